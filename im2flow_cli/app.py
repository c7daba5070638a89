"""The `im2flow` command line: a thin layer over the flows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from im2flow_cli.console_output import console, print_failures, print_summary
from im2flow_cli.options import (  # noqa: F401
    START_API_EARLY,
    ConfigFile,
    DaskAddress,
    WorkDir,
    Workers,
    _fail,
    _model_tracking_uri,
    _parse_params,
    _preflight,
    _tracking_uri,
    _with_tracking,
    app,
)
from im2flow_core.optical_flow import FlowAlgorithm
from im2flow_storage.datasets import DatasetError, DatasetLayout
from im2flow_storage.flow_store import FlowStoreError
from im2flow_storage.manifest import ManifestError
from im2flow_tasks.config import (
    ConfigError,
    EvalConfig,
    ExtractConfig,
    IngestConfig,
    RecognizeConfig,
    TrainConfig,
    load_config,
)


@app.command()
def ingest(dataset_root: Annotated[str, typer.Argument(help="dataset folder, or a CSV/Parquet video list")],
           work_dir: WorkDir, layout: Annotated[Optional[DatasetLayout], typer.Option()] = None,
           split_index: Annotated[Optional[int], typer.Option(help="official split 1-3")] = None,
           test_fraction: Annotated[Optional[float], typer.Option()] = None,
           seed: Annotated[Optional[int], typer.Option()] = None,
           allow_shrink: Annotated[bool, typer.Option("--allow-shrink", help="let the manifest lose more than 5 % of "
                                                      "its ok videos (deleted, moved)")] = False,
           workers: Workers = None, dask_address: DaskAddress = None, config: ConfigFile = None) -> None:
    """Find and probe every video of a dataset; write WORK_DIR/manifest.parquet."""
    from im2flow_flows.ingest import ingest_flow
    from im2flow_services.dask_cluster import dask_scheduler, task_runner
    try:
        cfg = load_config(IngestConfig, config, "ingest", layout=layout, split_index=split_index,
                          test_fraction=test_fraction, seed=seed, workers=workers, dask_address=dask_address,
                          allow_shrink=allow_shrink or None)
        with dask_scheduler(cfg.workers, cfg.dask_address) as address:
            _preflight(dask_address=cfg.dask_address)  # after the local cluster: it starts while the API boots
            summary = ingest_flow.with_options(task_runner=task_runner(address))(
                dataset_root, work_dir, cfg, show_progress=True)
    except (ConfigError, DatasetError, ManifestError, RuntimeError) as exc:
        _fail(str(exc))
    print_summary("ingest", summary)
    print_failures(summary.failures, summary.manifest + " (columns status, error)")


@app.command()
def extract(work_dir: WorkDir,
            algorithm: Annotated[Optional[FlowAlgorithm], typer.Option(help="optical-flow algorithm")] = None,
            short_side: Annotated[Optional[int], typer.Option(help="resize so the shorter side is N px")] = None,
            size: Annotated[Optional[str], typer.Option(help="resize to WxH px")] = None,
            step: Annotated[Optional[int], typer.Option(help="flow from frame t to t+K")] = None,
            frame_stride: Annotated[Optional[int], typer.Option(help="keep every S-th frame")] = None,
            max_frames: Annotated[Optional[int], typer.Option(help="at most N frames per video")] = None,
            param: Annotated[Optional[list[str]],
                             typer.Option(help="algorithm parameter KEY=VALUE (repeatable)")] = None,
            device: Annotated[Optional[str], typer.Option(help="tvl1-torch: auto, cpu or cuda")] = None,
            batch_size: Annotated[Optional[int], typer.Option(help="tvl1-torch: frame pairs per batch")] = None,
            compile: Annotated[Optional[bool], typer.Option(
                "--compile/--no-compile", help="tvl1-torch: torch.compile the iterations (default on)")] = None,
            workers: Workers = None, dask_address: DaskAddress = None, config: ConfigFile = None) -> None:
    """Compute optical flow for every ok video into a flow store under WORK_DIR/flows."""
    from im2flow_flows.extract import extract_flow
    from im2flow_services.dask_cluster import dask_scheduler, task_runner
    try:
        overrides: dict[str, Any] = dict(algorithm=algorithm, short_side=short_side, size=size, step=step,
                                         frame_stride=frame_stride, max_frames=max_frames, workers=workers,
                                         dask_address=dask_address, device=device, batch_size=batch_size,
                                         compile=compile)
        cfg = load_config(ExtractConfig, config, "extract", **overrides)
        if param:
            cfg = load_config(ExtractConfig, config, "extract", **overrides,
                              **{cfg.params_field: {**cfg.algorithm_params().model_dump(by_alias=True),
                                                       **_parse_params(param)}})
        with dask_scheduler(cfg.workers, cfg.dask_address) as address:
            _preflight(dask_address=cfg.dask_address)  # after the local cluster: it starts while the API boots
            summary = extract_flow.with_options(task_runner=task_runner(address))(work_dir, cfg, show_progress=True)
    except (ConfigError, ManifestError, FlowStoreError, RuntimeError) as exc:
        _fail(str(exc))
    print_summary("extract", summary)
    if summary.videos_ok == 0:
        _fail(f"the manifest of {work_dir} has no ok videos to extract: see its status and error columns "
              "(`im2flow inspect`)")
    if summary.failed and summary.failed == summary.videos_ok - summary.skipped_complete:
        _fail(f"every video to extract failed ({summary.failed}): the reasons are above and in {summary.report}")


@app.command()
def train(work_dir: WorkDir, config: ConfigFile = None,
          device: Annotated[Optional[str], typer.Option(help="auto, cpu or cuda")] = None,
          epochs: Annotated[Optional[int], typer.Option(help="epochs of G")] = None,
          batch_size: Annotated[Optional[int], typer.Option()] = None,
          content_weight: Annotated[Optional[float], typer.Option("--lambda", help="λ; 0 = pixel-only")] = None,
          phi_weights: Annotated[Optional[Path], typer.Option(help="local φ weights file: skip training φ")] = None,
          store: Annotated[Optional[str], typer.Option(help="flow-store fingerprint, if several")] = None) -> None:
    """Train φ on true flow, then G (Im2Flow); log and register the model in MLflow."""
    from im2flow_flows.train import train_flow
    try:
        base = load_config(TrainConfig, config, "train")
        overrides: dict[str, Any] = {"device": device, "epochs": epochs, "batch_size": batch_size,
                                     "store_fingerprint": store}
        if content_weight is not None:
            overrides["loss"] = {**base.loss.model_dump(), "content_weight": content_weight}
        if phi_weights is not None:
            overrides["phi"] = {**base.phi.model_dump(), "weights": phi_weights}
        cfg = _with_tracking(load_config(TrainConfig, config, "train", **overrides), work_dir)
        summary = train_flow(work_dir, cfg, show_progress=True)
    except (ConfigError, FlowStoreError, ValueError, RuntimeError) as exc:
        _fail(str(exc))
    print_summary("train", summary)


@app.command()
def predict(images: Annotated[list[str], typer.Argument(
                help="image files (any size), folders of them, or .txt lists of them")],
            out: Annotated[Path, typer.Option("--out", help="output folder")],
            model: Annotated[Optional[str], typer.Option(help="exported .pt file or MLflow model URI")] = None,
            work_dir: Annotated[Optional[str], typer.Option("--work-dir", "-w", help="for the default model")] = None,
            flow_format: Annotated[str, typer.Option("--format", help="npy or flo for (u, v)")] = "npy",
            device: str = "auto") -> None:
    """Hallucinate the flow of still images; print each image's motion potential."""
    from im2flow_tasks.models import load_generator
    from im2flow_tasks.predict import predict_images
    if flow_format not in ("npy", "flo"):
        _fail(f"--format must be npy or flo, got {flow_format!r}")
    try:
        _preflight(_model_tracking_uri(model, work_dir), prefect=False)  # predict runs no flow
        from im2flow_tasks.potential import image_files
        generator = load_generator(model, work_dir)
        rows = predict_images(image_files(images), generator, out, flow_format, device,  # type: ignore[arg-type]
                              show_progress=True)
    except (ValueError, RuntimeError) as exc:
        _fail(str(exc))
    readable = [r for r in rows if not r["error"]]
    shown = readable if len(readable) <= 20 else sorted(readable, key=lambda r: -r["motion_potential_px"])[:20]
    table = Table("image", "size", "motion potential (px)",
                  title=None if shown is readable else f"the 20 of {len(readable)} images with the most motion")
    for r in shown:
        table.add_row(r["image"], f"{r['width']}×{r['height']}", str(r["motion_potential_px"]))
    console.print(table)
    failures = [{"item": r["image"], "error": r["error"]} for r in rows if r["error"]]
    print_failures(failures, str(out / "predictions.csv"))
    console.print(f"{len(readable)} of {len(rows)} images predicted; outputs and predictions.csv in {out}")
    if failures:
        raise typer.Exit(1)


@app.command()
def evaluate(work_dir: WorkDir, model: Annotated[Optional[str], typer.Option(help="exported .pt or MLflow URI")] = None,
             split: Annotated[Optional[str], typer.Option(help="split to evaluate (default test)")] = None,
             frames_per_video: Annotated[Optional[int], typer.Option()] = None,
             fg_mask_dir: Annotated[Optional[Path], typer.Option(help="user foreground masks")] = None,
             config: ConfigFile = None) -> None:
    """EPE / DS / OS of Im2Flow and the baselines (all pixels, Canny edges, foreground)."""
    from im2flow_flows.evaluate import evaluate_flow
    try:
        cfg = load_config(EvalConfig, config, "evaluate", model=model, split=split,
                          frames_per_video=frames_per_video, fg_mask_dir=fg_mask_dir)
        cfg = _with_tracking(cfg, work_dir)
        result = evaluate_flow(work_dir, cfg, show_progress=True)
    except (ConfigError, FlowStoreError, ValueError, RuntimeError) as exc:
        _fail(str(exc))
    console.print(result.markdown, soft_wrap=True)  # tables stay one row a line
    console.print(f"report in {result.out_dir}")


@app.command()
def recognize(work_dir: WorkDir,
              model: Annotated[Optional[str], typer.Option(help="G: exported .pt or MLflow URI")] = None,
              images_csv: Annotated[Optional[Path], typer.Option(
                  help="still images instead of video frames: CSV with path,label[,split]")] = None,
              split: Annotated[Optional[str], typer.Option(help="split to report (default test)")] = None,
              seeds: Annotated[Optional[str], typer.Option(help="comma-separated seeds (default 0,1,2)")] = None,
              fusion_weight: Annotated[Optional[float], typer.Option(
                  help="motion weight in [0, 1] (default: chosen on validation)")] = None,
              oracle: Annotated[Optional[bool], typer.Option("--oracle/--no-oracle",
                                                             help="also train on true flow")] = None,
              device: Annotated[Optional[str], typer.Option(help="auto, cpu or cuda")] = None,
              config: ConfigFile = None) -> None:
    """Static-image action recognition: appearance + hallucinated-motion streams, late fusion."""
    from im2flow_flows.recognize import recognize_flow
    try:
        seed_list = tuple(int(s) for s in seeds.split(",")) if seeds else None
        cfg = load_config(RecognizeConfig, config, "recognize", model=model, images_csv=images_csv, split=split,
                          seeds=seed_list, fusion_weight=fusion_weight, oracle=oracle, device=device)
        cfg = _with_tracking(cfg, work_dir)
        result = recognize_flow(work_dir, cfg, show_progress=True)
    except (ConfigError, FlowStoreError, ValueError, RuntimeError) as exc:
        _fail(str(exc))
    console.print(result.markdown, soft_wrap=True)  # tables stay one row a line
    console.print(f"tables, confusion matrices and stream weights in {result.out_dir}")


@app.command()
def potential(work_dir: WorkDir,
              images: Annotated[Optional[list[str]], typer.Argument(
                  help="image files, folders or .txt lists of them; none = a split's frames")] = None,
              split: Annotated[Optional[str], typer.Option()] = None,
              model: Annotated[Optional[str], typer.Option(help="exported .pt or MLflow URI")] = None,
              config: ConfigFile = None) -> None:
    """Rank still images (or a split's frames) by motion potential; gallery and CSV."""
    from im2flow_flows.potential import potential_flow
    try:
        cfg = _with_tracking(load_config(EvalConfig, config, "evaluate", model=model, split=split), work_dir)
        result = potential_flow(work_dir, images or None, cfg, show_progress=True)
    except (ConfigError, FlowStoreError, ValueError, RuntimeError) as exc:
        _fail(str(exc))
    split_mode = not images
    columns = ["rank", "image", "potential (px)"] + (["true mean motion (px)"] if split_mode else [])
    table = Table(*columns, title="motion potential (top 20)")
    for row in result.ranking[:20]:
        table.add_row(str(row["rank"]), row["image"], str(row["potential_px"]),
                      *([str(row["true_mean_magnitude_px"])] if split_mode else []))
    console.print(table)
    console.print(result.note, soft_wrap=True)
    for r in result.agreement:
        if r["spearman"] == r["spearman"]:  # NaN for methods that give every image one value
            console.print(f"{r['method']}: Spearman ρ {r['spearman']:.3f} [{r['spearman_low']:.3f}, "
                          f"{r['spearman_high']:.3f}], Kendall τ {r['kendall']:.3f} [{r['kendall_low']:.3f}, "
                          f"{r['kendall_high']:.3f}]")
    errors = result.skipped_errors
    print_failures([{"item": name, "error": errors.get(name, "cannot read as an image")} for name in result.skipped],
                   f"{result.out_dir}/skipped.csv")
    console.print(f"ranking and gallery in {result.out_dir}")
    if result.skipped:
        raise typer.Exit(1)


import im2flow_cli.all_stages  # noqa: E402,F401 - registers `pipeline`, `serve` and `demo` on the app
import im2flow_cli.interop  # noqa: E402,F401 - registers `export` and `import-flow` on the app
import im2flow_cli.tools  # noqa: E402,F401 - registers `compare` and `inspect` on the app


def main() -> None:
    """Console-script entry point.

    A file that cannot be read or written (permissions, a file where a folder must be, a full disk)
    ends any command with one line naming it, not a traceback.
    """
    try:
        app(obj=START_API_EARLY)
    except OSError as exc:
        from rich.markup import escape

        where = f"{exc.filename}: " if exc.filename is not None else ""
        console.print(f"[red]error:[/red] {escape(where + str(exc.strerror or exc))}", soft_wrap=True, highlight=False)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
