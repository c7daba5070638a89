"""The potential flow: rank still images, or a split's frames, by motion potential (how much motion an
image implies), with rank agreement against the true motion and a gallery of the top and bottom."""

from __future__ import annotations

import math
from typing import Any

import cv2
import mlflow
import numpy as np
from prefect import flow
from prefect.runtime import flow_run

from im2flow_core.figures import potential_gallery
from im2flow_storage import open_flow_store
from im2flow_storage.paths import potential_url, split_name
from im2flow_storage.reports import csv_text
from im2flow_tasks.config import EvalConfig
from im2flow_tasks.evaluate import fit_baselines
from im2flow_tasks.models import load_generator
from im2flow_tasks.outcomes import write_report
from im2flow_tasks.potential import (
    POTENTIAL_NOTE,
    agreement_markdown,
    agreement_table,
    gallery_entries,
    image_files,
    score_images,
    split_frames,
    split_samples,
    still_images,
)
from im2flow_tasks.previews import png_data_uri
from im2flow_tasks.progress import RunProgress
from im2flow_tasks.run_labels import publish_markdown
from im2flow_tasks.tracking import (
    check_tracking,
    default_tracking_uri,
    git_commit,
    log_artifact_url,
    now_ms,
    tracked_run,
)
from im2flow_tasks.train_data import resolve_device


def _potential_run_name() -> str:
    """`potential-<split>` (`potential-test-split2`) for a split's frames, `potential-images` for still images."""
    params = flow_run.parameters
    if params.get("images"):
        return "potential-images"
    config = params.get("config") or EvalConfig()
    get = config.get if isinstance(config, dict) else lambda name, default=None: getattr(config, name, default)
    return f"potential-{split_name(get('split', 'test'), get('split_index'))}"


@flow(name="potential", flow_run_name=_potential_run_name, log_prints=True, persist_result=False)
def potential_flow(work_dir: str, images: list[str] | None = None, config: EvalConfig = EvalConfig(),
                   show_progress: bool = False) -> dict[str, Any]:
    """Rank still images (files or folders) by motion potential, or with `images` None `frames_per_video`
    evenly spaced frames (`video_id@t`) of every video of `config.split`, scored against their true mean
    magnitude beside the nearest-neighbour baseline (the frames `evaluate` scores).

    Unreadable images are named and skipped. Writes ranking.csv, agreement.csv, gallery.png (top and
    bottom of the ranking, with their true motion when known) and skipped.csv; logs ρ and τ to MLflow.
    `show_progress`: terminal bars (the Prefect UI always gets progress artifacts).
    """
    started_ms = now_ms()  # the MLflow run spans the work, though it is opened after it
    tracking_uri = default_tracking_uri(work_dir, config.mlflow_tracking_uri)
    check_tracking(tracking_uri)
    generator = load_generator(config.model, work_dir, tracking_uri)
    device = resolve_device(config.device)
    generator = generator.to(device)
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
    ranked = sorted(rows, key=lambda r: -r["potential_px"])
    table = [{"rank": i + 1, **{k: (round(v, 4) if isinstance(v, float) and math.isfinite(v) else
                                    ("" if isinstance(v, float) else v)) for k, v in r.items()}}
             for i, r in enumerate(ranked)]
    agreement: list[dict[str, Any]] = []
    if images is None:
        truth = np.array([r["true_mean_magnitude_px"] for r in rows])
        agreement = agreement_table({"Im2Flow": np.array([r["potential_px"] for r in rows]),
                                     "Nearest neighbour": np.array([nn_scores[r["image"]] for r in rows]),
                                     "Zero flow": np.zeros(len(rows)), "Mean flow": np.ones(len(rows))}, truth)
    rank_of = {r["image"]: r["rank"] for r in table}
    gallery = potential_gallery(gallery_entries(result["extremes"], rank_of), rank_of)
    ok, png = cv2.imencode(".png", cv2.cvtColor(gallery, cv2.COLOR_RGB2BGR))
    out_dir = potential_url(work_dir, None if images else config.split_index)
    files: dict[str, str | bytes] = {"ranking.csv": csv_text(table), "gallery.png": png.tobytes()}
    if agreement:
        files["agreement.csv"] = csv_text(agreement)
    if result["skipped"]:
        files["skipped.csv"] = csv_text([{"image": name, "error": problems.get(name, "cannot read as an image")}
                                         for name in result["skipped"]])
    paths = write_report(out_dir, files, "potential")
    run_name = "potential" if images or config.split_index is None else f"potential-split{config.split_index}"
    with tracked_run(tracking_uri, config.experiment, run_name, tags={"git_commit": git_commit()},
                     started_ms=started_ms) as run:
        for path in paths:
            log_artifact_url(path)
        mlflow.log_metrics({f"potential_{stat}_{r['method'].lower().replace(' ', '_')}": r[stat] for r in agreement
                            for stat in ("spearman", "spearman_low", "spearman_high", "kendall", "kendall_low",
                                         "kendall_high") if math.isfinite(r[stat])})
    publish_markdown("motion-potential",
                     "# Motion potential\n\n" + POTENTIAL_NOTE + "\n\n"
                     + (agreement_markdown(agreement) + "\n\n" if agreement else "")
                     + f"![gallery]({png_data_uri(gallery)})",
                     work_dir, "Images ranked by how much motion they imply")
    return {"ranking": table, "spearman": {r["method"]: r["spearman"] for r in agreement}, "agreement": agreement,
            "skipped": result["skipped"], "skipped_errors": problems, "out_dir": out_dir, "run_id": run.info.run_id,
            "note": POTENTIAL_NOTE, "files": paths}
