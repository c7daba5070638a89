"""Writes the built-in demo dataset: real video files in the UCF-101 layout, with split files.

`ROOT/<Action>/v_<Action>_gNN_cMM.{mp4,avi}` plus `ROOT/ucfTrainTestlist/` (classInd.txt,
trainlist01.txt, testlist01.txt). Clips of one group share a background and a figure texture, like
clips cut from one recording, and the split is by group so no scene is in both train and test.
Containers alternate between MPEG-4 Part 2 in .mp4 and Motion-JPEG in .avi. Each action's scenes
are drawn from its kind of place (`im2flow_core.synthetic_actions.PLACES`).
"""

from __future__ import annotations

from pathlib import Path

import cv2

from im2flow_core.synthetic_actions import ACTIONS, PLACES, make_scene_style, render_clip

DEMO_DATASET_VERSION = 7
"""Bump when the generator changes what it writes, so existing demo datasets are regenerated."""


def _class_name(action: str) -> str:
    return "".join(part.capitalize() for part in action.split("_"))


def write_demo_dataset(root: str | Path, *, seed: int = 0, groups_per_class: int = 40, clips_per_group: int = 1,
                       test_groups: int = 8, size: int = 96, n_frames: int = 5, fps: float = 12.0,
                       figure_scale: float = 1.5) -> Path:
    """Generate the demo dataset under `root` (deterministic in `seed`); returns `root`.

    The last `test_groups` groups of each class form the test split. Existing files are rewritten.
    Many short clips of many scenes rather than long clips of few: frames of one clip are nearly
    redundant, and a model that saw few backgrounds learns them instead of the figures (measured:
    the direction similarity of G on the foreground rose from 0.02 to 0.16 at equal compute; with
    16 scenes per class G still fitted the training scenes exactly and reversed the walkers'
    direction on test scenes, 40 scenes fixed that). Figures are 1.5× the sprite size (about 45 px
    of a 96 px frame, 13 % of the pixels move), closer to how large actors are in action datasets.
    Five frames (four flows) a clip: the demo's extraction time goes by flow pairs, and consecutive
    frames of a clip teach G little that the first ones did not.
    """
    if not 0 < test_groups < groups_per_class:
        raise ValueError("test_groups must be between 1 and groups_per_class - 1")
    root = Path(root)
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    train: list[tuple[str, int]] = []
    test: list[tuple[str, int]] = []
    for class_index, action in enumerate(ACTIONS):
        name = _class_name(action)
        (root / name).mkdir(exist_ok=True)
        for group in range(1, groups_per_class + 1):
            style = make_scene_style(seed * 100_003 + class_index * 1009 + group, size, PLACES[action])
            for clip in range(1, clips_per_group + 1):
                ext, fourcc = (("mp4", "mp4v") if (group + clip) % 2 else ("avi", "MJPG"))
                rel = f"{name}/v_{name}_g{group:02d}_c{clip:02d}.{ext}"
                frames = render_clip(action, seed * 7919 + class_index * 131 + group * 17 + clip, style, n_frames,
                                     figure_scale=figure_scale)
                writer = cv2.VideoWriter(str(root / rel), cv2.VideoWriter.fourcc(*fourcc), fps, (size, size))
                if not writer.isOpened():
                    raise RuntimeError(f"OpenCV cannot write {fourcc} video {root / rel}")
                for frame in frames:
                    writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
                writer.release()
                (test if group > groups_per_class - test_groups else train).append((rel, class_index + 1))
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {_class_name(a)}\n" for i, a in enumerate(ACTIONS)))
    (lists / "trainlist01.txt").write_text("".join(f"{rel} {label}\n" for rel, label in train))
    (lists / "testlist01.txt").write_text("".join(f"{rel}\n" for rel, _ in test))
    return root
