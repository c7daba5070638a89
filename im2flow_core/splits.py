"""Deterministic, stratified train/test splits by video (or by group of videos), never by frame."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Sequence

_UCF_GROUP = re.compile(r"_g(\d+)_c\d+$")


def group_of(video_id: str) -> str:
    """The group a video belongs to: UCF-101-style `v_Class_gNN_cMM` clips of one group share it.

    Clips cut from one long recording must not straddle the split; other names are their own group.
    """
    match = _UCF_GROUP.search(video_id)
    return video_id[: match.start()] + f"_g{match.group(1)}" if match else video_id


def _rank(key: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def stratified_split(video_ids: Sequence[str], labels: Sequence[str], test_fraction: float = 0.3,
                     seed: int = 0) -> dict[str, str]:
    """Assign each video to "train" or "test", per label, by a seeded hash of its group.

    Each label with at least two groups gets round(test_fraction · groups) ≥ 1 test groups (and
    ≥ 1 train group); a label with one group goes to train. The result depends only on the ids,
    labels, fraction and seed — not on input order — so adding videos never moves existing groups
    unless their label's group count changes the rounded number.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if len(video_ids) != len(labels):
        raise ValueError("video_ids and labels differ in length")
    groups_by_label: dict[str, set[str]] = defaultdict(set)
    for video_id, label in zip(video_ids, labels):
        groups_by_label[label].add(group_of(video_id))
    test_groups: set[tuple[str, str]] = set()
    for label, groups in groups_by_label.items():
        ordered = sorted(groups, key=lambda g: _rank(g, seed))
        n_test = 0 if len(ordered) < 2 else min(len(ordered) - 1, max(1, round(test_fraction * len(ordered))))
        test_groups.update((label, g) for g in ordered[:n_test])
    return {v: ("test" if (lab, group_of(v)) in test_groups else "train") for v, lab in zip(video_ids, labels)}
