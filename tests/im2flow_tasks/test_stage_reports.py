"""The stage tasks the flows compose, tested alone (`task.fn`, no Prefect run): fusion and scores per seed, the
recognition and evaluation reports, the potential ranking's rows and files, import manifest rows, export's
still-image videos, and the typed summaries' metrics and cache records."""

import math

import cv2
import numpy as np
import pytest

from im2flow_storage.manifest import read_manifest, write_manifest
from im2flow_tasks.config import RecognizeConfig
from im2flow_tasks.evaluate import METHODS
from im2flow_tasks.evaluation_report import summarize_evaluation
from im2flow_tasks.export_runs import image_videos
from im2flow_tasks.import_manifest import merge_manifest
from im2flow_tasks.potential_ranking import PotentialRanking, ranking_rows
from im2flow_tasks.recognition_report import score_seed, summarize_recognition
from im2flow_tasks.recognize_data import RecognitionData
from im2flow_tasks.summaries import EvaluationSummary, PotentialSummary, RecognitionSummary, summary_from_record


def _data(val_labels, test_labels, test_ids, labels=("a", "b")) -> RecognitionData:
    """Image-kind recognition data: (path, label index) samples."""
    return RecognitionData("images", "list.csv", list(labels), train=[("t.png", 0)],
                           val=[(f"v{i}.png", k) for i, k in enumerate(val_labels)],
                           test=[(name, k) for name, k in zip(test_ids, test_labels)])


def _onehot(indices, classes=2, sure=0.9) -> np.ndarray:
    out = np.full((len(indices), classes), (1 - sure) / (classes - 1))
    out[np.arange(len(indices)), indices] = sure
    return out


def test_a_seed_fuses_with_the_weight_validation_chooses_and_scores_every_method():
    # Appearance is right on the first half of the samples, motion on the second half: fusion can be right on all.
    truth = [0, 1, 0, 1]
    wrong = [1, 0, 1, 0]
    appearance = np.concatenate([_onehot(truth[:2], sure=0.9), _onehot(wrong[2:], sure=0.6)])
    motion = np.concatenate([_onehot(wrong[:2], sure=0.6), _onehot(truth[2:], sure=0.9)])
    data = _data(truth, truth, ["x", "y", "z", "w"])
    streams = {"appearance": {"val_scores": appearance, "test_scores": appearance},
               "motion": {"val_scores": motion, "test_scores": motion}}
    result = score_seed.fn(RecognizeConfig(), data, 3, streams)
    rows = {r["method"]: r for r in result.rows}
    assert set(rows) == {"appearance", "motion", "fused"} and all(r["seed"] == 3 for r in rows.values())
    assert rows["appearance"]["acc"] == rows["motion"]["acc"] == 0.5 and rows["fused"]["acc"] == 1.0
    assert 0 < rows["fused"]["motion_weight"] < 1 and rows["appearance"]["motion_weight"] is None
    assert result.confusions["fused"].tolist() == [[2, 0], [0, 2]]
    fixed = score_seed.fn(RecognizeConfig(fusion_weight=1.0), data, 3, streams)
    assert {r["method"]: r["acc"] for r in fixed.rows}["fused"] == 0.5  # w = 1: motion alone


def test_the_recognition_report_averages_seeds_and_writes_its_files():
    data = _data([0, 1], [0, 1], ["x", "y"])
    data.skipped.append({"item": "bad.png", "reason": "cannot read as an image"})
    appearance = {"val_scores": _onehot([0, 1]), "test_scores": _onehot([0, 0])}
    motion = {"val_scores": _onehot([0, 1]), "test_scores": _onehot([0, 1])}
    seeds = [score_seed.fn(RecognizeConfig(), data, seed, {"appearance": appearance, "motion": motion})
             for seed in (0, 1)]
    report = summarize_recognition.fn(seeds, data)
    table = {r["method"]: r for r in report.table}
    assert table["appearance"]["acc"] == 0.5 and table["motion"]["acc"] == 1.0 and table["motion"]["seeds"] == 2
    assert table["motion"]["acc_std"] == 0.0 and "| motion | 1.000 ± 0.000 |" in report.markdown
    assert set(report.files) == {"table.csv", "table.md", "per_seed.csv", "skipped.csv", "confusion_appearance.png",
                                 "confusion_motion.png", "confusion_fused.png"}
    picture = cv2.imdecode(np.frombuffer(report.files["confusion_motion.png"], np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape[:2] == report.images["motion"].shape[:2]
    summary = RecognitionSummary(table=report.table, markdown=report.markdown, per_seed=seeds[0].rows, out_dir="r",
                                 run_id="1", labels=data.labels, skipped=data.skipped)
    assert summary.headline_metrics()["acc_motion"] == 1.0 and "acc_motion_std" in summary.headline_metrics()


def _evaluation_rows():
    rows, examples = [], {}
    rng = np.random.default_rng(0)
    for t, label in enumerate(("swim", "swim", "spin")):
        true = rng.normal(size=(8, 8, 2)).astype(np.float32)
        examples[("v", t)] = {"rgb": np.zeros((8, 8, 3), np.uint8), "true": true, "Im2Flow": true * 0.5,
                              "Nearest neighbour": true * 0}
        for k, method in enumerate(METHODS):
            scores = {c: float(k + t) for c in ("epe", "epe_canny", "epe_fg", "ds", "ds_canny", "ds_fg", "os",
                                                 "os_canny", "os_fg")}
            rows.append({"method": method, "video_id": "v", "label": label, "t": t, **scores,
                         "true_mean_magnitude": float(t), "pred_mean_magnitude": float(k),
                         "potential_px": float(t if method == "Im2Flow" else k)})
    return rows, examples


def test_the_evaluation_report_holds_the_papers_table_per_class_scores_and_examples():
    rows, examples = _evaluation_rows()
    report = summarize_evaluation.fn(rows, examples, 1)
    assert [r["method"] for r in report.table] == list(METHODS) and report.frames == 3
    assert report.table[0]["epe"] == pytest.approx(1.0)  # Im2Flow: the mean of 0, 1, 2
    assert report.markdown.startswith("| method | EPE |") and "Spearman ρ" in report.markdown
    assert set(report.files) == {"table.csv", "table.md", "potential.csv", "per_class.csv", "per_image.csv",
                                 "examples.png"}
    assert report.files["per_class.csv"].count("\n") == 1 + len(METHODS) * 2  # a header, 2 labels a method
    assert report.examples.ndim == 3 and report.examples.shape[2] == 3
    summary = EvaluationSummary(table=report.table, markdown=report.markdown, out_dir="e", run_id="1")
    assert summary.headline_metrics()["epe"] == pytest.approx(1.0) and "method" not in summary.headline_metrics()
    back = summary_from_record("evaluate", summary.cache_record())
    assert back == summary and back.method_row("Zero flow")["epe"] == pytest.approx(3.0)


def test_the_potential_ranking_sorts_rounds_and_names_its_files():
    rows = [{"image": "a", "potential_px": 0.123456, "true_mean_magnitude_px": math.nan},
            {"image": "b", "potential_px": 2.0, "true_mean_magnitude_px": 1.5}]
    table = ranking_rows(rows)
    assert [(r["rank"], r["image"]) for r in table] == [(1, "b"), (2, "a")]
    assert table[1]["potential_px"] == 0.1235 and table[1]["true_mean_magnitude_px"] == ""  # NaN: unknown
    ranking = PotentialRanking(table, [], ["c.png"], {"c.png": "over the pixel limit"}, np.zeros((4, 4, 3), np.uint8))
    files = ranking.report_files()
    assert set(files) == {"ranking.csv", "gallery.png", "skipped.csv"}  # no truth: no agreement table
    assert "over the pixel limit" in files["skipped.csv"]
    agreement = [{"method": "Im2Flow", "spearman": 0.5, "spearman_low": 0.2, "spearman_high": 0.7, "kendall": 0.4,
                  "kendall_low": 0.1, "kendall_high": math.nan}]
    summary = PotentialSummary(ranking=table, agreement=agreement, skipped=[], skipped_errors={}, out_dir="p",
                               run_id="1", note="")
    assert summary.spearman == {"Im2Flow": 0.5}
    assert "potential_kendall_high_im2flow" not in summary.headline_metrics()  # NaN left out
    assert summary.headline_metrics()["potential_spearman_im2flow"] == 0.5


def test_imported_folders_replace_their_manifest_rows_and_keep_the_others(tmp_path):
    work = str(tmp_path / "w")
    base = {"path": "/x", "label": "Run", "split": "train", "status": "ok", "error": "", "warning": "",
            "n_frames": 5, "container_frames": 5, "fps": 25.0, "width": 8, "height": 8, "duration_s": 0.2,
            "codec": "h264", "size_bytes": 10, "mtime": 1.0, "official_splits": ""}
    write_manifest([{**base, "video_id": "Run/a"}, {**base, "video_id": "Run/b"}], work)
    outcome = {"video_id": "Run/b", "path": "/raw/Run/b", "label": "Run", "split": "test", "status": "complete",
               "error": "", "numbering": "img from 1, flow from 1", "n_frames": 7, "width": 16, "height": 12,
               "size_bytes": 99, "mtime": 2.0}
    merge_manifest.fn(work, [outcome, {**outcome, "video_id": "Run/c", "status": "failed", "error": "gap"}])
    rows = {r["video_id"]: r for r in read_manifest(work)}
    assert rows["Run/a"]["status"] == "ok" and rows["Run/a"]["codec"] == "h264"  # untouched
    assert (rows["Run/b"]["status"], rows["Run/b"]["split"], rows["Run/b"]["n_frames"]) == ("imported", "test", 7)
    assert (rows["Run/c"]["status"], rows["Run/c"]["error"]) == ("unreadable", "gap")


def test_still_images_become_single_frame_videos_labelled_by_their_folder(tmp_path):
    (tmp_path / "stills" / "Run").mkdir(parents=True)
    for name in ("stills/Run/a.png", "stills/top.jpg", "loose.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((4, 4, 3), np.uint8))
    videos = image_videos([str(tmp_path / "stills"), str(tmp_path / "loose.png")])
    assert [(v["video_id"], v["label"], v["split"]) for v in videos] == [
        ("Run/a", "Run", "test"), ("stills/top", "stills", "test"), ("stills/loose", "stills", "test")]
