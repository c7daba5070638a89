"""The potential stage's work: rank images by motion potential, measure rank agreement, draw the gallery."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from prefect import task

from im2flow_core.figures import potential_gallery
from im2flow_storage import open_flow_store
from im2flow_storage.reports import csv_text
from im2flow_tasks.config import EvalConfig
from im2flow_tasks.evaluate import fit_baselines
from im2flow_tasks.models import load_generator_on
from im2flow_tasks.potential import (
    agreement_table,
    gallery_entries,
    image_files,
    score_images,
    split_frames,
    split_samples,
    still_images,
)
from im2flow_tasks.progress import RunProgress


@dataclass(frozen=True)
class PotentialRanking:
    """Images ranked by motion potential: the ranking rows (rank 1 = most motion), rank agreement with the
    true motion (split frames only), the unreadable images and why, and the gallery `(H, W, 3) uint8`."""

    table: list[dict[str, Any]]
    agreement: list[dict[str, Any]]
    skipped: list[str]
    problems: dict[str, str]
    gallery: np.ndarray = field(repr=False)

    def report_files(self) -> dict[str, str | bytes]:
        """ranking.csv, gallery.png, and agreement.csv and skipped.csv when there is something to say."""
        png = cv2.imencode(".png", cv2.cvtColor(self.gallery, cv2.COLOR_RGB2BGR))[1].tobytes()
        files: dict[str, str | bytes] = {"ranking.csv": csv_text(self.table), "gallery.png": png}
        if self.agreement:
            files["agreement.csv"] = csv_text(self.agreement)
        if self.skipped:
            files["skipped.csv"] = csv_text([{"image": name,
                                              "error": self.problems.get(name, "cannot read as an image")}
                                             for name in self.skipped])
        return files


def ranking_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Scored rows sorted by potential (highest first) with their rank; floats to 4 decimals, NaN as ''."""
    ranked = sorted(rows, key=lambda r: -r["potential_px"])
    return [{"rank": i + 1, **{k: (round(v, 4) if isinstance(v, float) and math.isfinite(v) else
                                   ("" if isinstance(v, float) else v)) for k, v in r.items()}}
            for i, r in enumerate(ranked)]


@task(name="rank-by-potential", task_run_name="rank-by-potential", persist_result=False)
def rank_by_potential(work_dir: str, images: list[str] | None, config: EvalConfig, tracking_uri: str,
                      show_progress: bool = False) -> PotentialRanking:
    """Score still `images` (files, folders, list files), or with `images` None the evenly spaced frames of
    `config.split` beside the nearest-neighbour baseline, with G (`config.model`, or the registry alias in
    `tracking_uri`); rank them, measure rank agreement with the true mean magnitude (split frames), draw the
    gallery of the top and bottom. ValueError when no image is readable.
    """
    generator, device = load_generator_on(config.model, work_dir, tracking_uri, config.device)
    nn_scores: dict[str, float] = {}
    problems: dict[str, str] = {}
    if images is None:
        store = open_flow_store(work_dir, config.store_fingerprint, split_index=config.split_index)
        records = store.records(complete_only=True)  # read once: on an object store, a request per video
        samples = split_samples(store, config.split, config.frames_per_video, records)
        nearest = fit_baselines(store, config, show_progress, records).nearest
        items, total = split_frames(store, samples, nearest, nn_scores), len(samples)
    else:
        paths = image_files(images)
        items, total = still_images(paths, problems), len(paths)
    with RunProgress(total, "scoring motion potential", show_progress) as progress:
        result = score_images(generator, progress.counted(items), device, config.batch_size, config.gallery_k,
                              config.fg_threshold_px)
    rows = result["rows"]
    if not rows:
        raise ValueError("no readable images to rank" + (f" (unreadable: {', '.join(result['skipped'][:5])})"
                                                          if result["skipped"] else ""))
    table = ranking_rows(rows)
    agreement: list[dict[str, Any]] = []
    if images is None:
        truth = np.array([r["true_mean_magnitude_px"] for r in rows])
        agreement = agreement_table({"Im2Flow": np.array([r["potential_px"] for r in rows]),
                                     "Nearest neighbour": np.array([nn_scores[r["image"]] for r in rows]),
                                     "Zero flow": np.zeros(len(rows)), "Mean flow": np.ones(len(rows))}, truth)
    rank_of = {r["image"]: r["rank"] for r in table}
    gallery = potential_gallery(gallery_entries(result["extremes"], rank_of), rank_of)
    return PotentialRanking(table, agreement, result["skipped"], problems, gallery)
