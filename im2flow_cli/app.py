"""The `im2flow` command line: a thin layer over the flows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from im2flow_cli.console_output import console, print_failures, print_pipeline, print_summary
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


Sets = Annotated[Optional[list[str]], typer.Option("--set", help="any field: SECTION.FIELD=VALUE (repeatable), "
                                                     "e.g. --set train.loss.content_weight=0")]
PipelineConfigFile = Annotated[Optional[Path], typer.Option("--config", help="pipeline YAML (a section per stage)")]
Preset = Annotated[Optional[str], typer.Option(help="paper (default) or demo (small models for CPUs)")]


def _pipeline_overrides(sets: list[str] | None, **flags: Any) -> dict[str, dict[str, Any]]:
    """`--set` values plus the named flags ("section.field": value; None = not given)."""
    from im2flow_tasks.pipeline_config import parse_sets, set_field
    overrides = parse_sets(sets)
    for dotted, value in flags.items():
        if value is not None:
            set_field(overrides, dotted, value)
    return overrides


@app.command()
def pipeline(dataset: Annotated[str, typer.Option("--dataset", help="dataset folder, or a CSV/Parquet video list")],
             work_dir: WorkDir, config: PipelineConfigFile = None, set_: Sets = None, preset: Preset = None,
             stages: Annotated[Optional[str], typer.Option(help="comma-separated subset of "
                                                           "ingest,extract,train,evaluate,recognize,potential")] = None,
             algorithm: Annotated[Optional[FlowAlgorithm], typer.Option(help="optical-flow algorithm")] = None,
             epochs: Annotated[Optional[int], typer.Option(help="epochs of G")] = None,
             content_weight: Annotated[Optional[float], typer.Option("--lambda", help="λ; 0 = pixel-only")] = None,
             device: Annotated[Optional[str], typer.Option(help="auto, cpu or cuda (training, evaluation)")] = None,
             run_name: Annotated[Optional[str], typer.Option(help="MLflow parent run name")] = None,
             refresh: Annotated[bool, typer.Option("--refresh", help="rerun stages whose inputs did not "
                                                  "change")] = False,
             split_index: Annotated[Optional[str], typer.Option(
                 help="official split(s) of UCF-101/HMDB-51: 1, 2, 3, a list like 1,2,3, or all (each trained, "
                      "evaluated and recognized from one flow store; reported per split and as mean ± std)")] = None,
             workers: Workers = None, dask_address: DaskAddress = None) -> None:
    """Run ingest → extract → train → evaluate → recognize → potential as one Prefect flow.

    Stages whose inputs and settings did not change since the last run are reused, not rerun.
    """
    from im2flow_flows.pipeline import pipeline_flow
    from im2flow_services.preflight import ServiceUnreachable
    from im2flow_tasks.pipeline_config import load_pipeline_configs
    try:
        from im2flow_tasks.pipeline_config import parse_splits
        splits = parse_splits(split_index) if split_index is not None else ()
        overrides = _pipeline_overrides(
            set_, **{"pipeline.stages": stages, "pipeline.run_name": run_name,
                     "ingest.split_index": splits[0] if splits else None,
                     "pipeline.splits": list(splits) if len(splits) > 1 else None,
                     "pipeline.refresh": True if refresh else None, "pipeline.workers": workers,
                     "pipeline.dask_address": dask_address,
                     "extract.algorithm": algorithm.value if algorithm else None, "train.epochs": epochs,
                     "train.loss.content_weight": content_weight, "train.device": device,
                     "evaluate.device": device, "recognize.device": device})
        # Configuration, devices and services are checked here, before any work, naming what is wrong; the
        # dataset is scanned once, by the pipeline, before any stage starts.
        configs = load_pipeline_configs(str(config) if config else None, overrides, preset)
        from im2flow_core.devices import resolve_device
        for section in ("extract", "train", "evaluate", "recognize"):  # before ingest and extract, not after
            resolve_device(getattr(configs, section).device)
        tracking_uri = _tracking_uri(work_dir, configs.pipeline.mlflow_tracking_uri)
        _preflight(tracking_uri, configs.pipeline.dask_address)
        result = pipeline_flow(dataset, work_dir, show_progress=True, configs=configs.with_tracking(tracking_uri))
    except (ConfigError, DatasetError, ManifestError, FlowStoreError, ServiceUnreachable, ValueError,
            RuntimeError) as exc:
        _fail(str(exc))
    print_pipeline(result)


@app.command()
def serve(dataset: Annotated[str, typer.Option("--dataset", help="dataset folder, or a CSV/Parquet video list")],
          work_dir: WorkDir, cron: Annotated[str, typer.Option(help='cron schedule, e.g. "0 3 * * *"')],
          config: PipelineConfigFile = None, set_: Sets = None, preset: Preset = None,
          name: Annotated[str, typer.Option(help="deployment name")] = "im2flow-pipeline",
          timezone: Annotated[str, typer.Option(help="time zone of the cron schedule")] = "UTC") -> None:
    """Serve the pipeline as a Prefect deployment on a cron schedule (needs a Prefect server).

    Start a server with `prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api;
    runs then appear in its UI. Stop serving with Ctrl-C (the schedule is paused).
    """
    from prefect.client.schemas.schedules import construct_schedule
    from prefect.deployments.runner import EntrypointType

    from im2flow_flows.pipeline import pipeline_flow
    from im2flow_services.preflight import prefect_api_url
    from im2flow_tasks.pipeline_config import load_pipeline_configs
    if prefect_api_url() is None:
        _fail("no Prefect server configured: start one with `prefect server start` and set "
              "PREFECT_API_URL=http://127.0.0.1:4200/api (a schedule needs a server that outlives this command)")
    try:
        _preflight()
        from im2flow_storage.datasets import check_official_splits, scan_dataset
        overrides = _pipeline_overrides(set_)
        configs = load_pipeline_configs(str(config) if config else None, overrides, preset)
        ing = configs.ingest
        if "ingest" in configs.pipeline.stages:
            check_official_splits(scan_dataset(dataset, ing.layout, ing.split_index, ing.test_fraction, ing.seed),
                                  configs.pipeline.splits)
        schedule = construct_schedule(cron=cron, timezone=timezone)
    except (ConfigError, DatasetError, ValueError, RuntimeError) as exc:
        _fail(str(exc))
    parameters = {"dataset_root": str(Path(dataset).absolute()) if "://" not in dataset else dataset,
                  "work_dir": str(Path(work_dir).absolute()) if "://" not in work_dir else work_dir,
                  "config_file": str(config.absolute()) if config else None, "overrides": overrides, "preset": preset}
    console.print(f"serving deployment pipeline/{name} on {prefect_api_url()} with cron {cron!r} ({timezone})")
    pipeline_flow.serve(name=name, schedules=[schedule], parameters=parameters,
                        entrypoint_type=EntrypointType.MODULE_PATH, tags=["im2flow"])


@app.command()
def demo(work_dir: Annotated[str, typer.Option("--work-dir", "-w")] = "im2flow-demo",
         seed: int = 0, workers: Workers = None, set_: Sets = None) -> None:
    """Generate the built-in dataset and run the whole pipeline on it (local Dask, no Prefect server needed)."""
    from im2flow_flows.demo import demo_flow
    from im2flow_services.preflight import ServiceUnreachable
    from im2flow_tasks.summaries import (
        EvaluationSummary,
        ExtractSummary,
        IngestSummary,
        PotentialSummary,
        RecognitionSummary,
        TrainSummary,
    )
    try:
        overrides = _pipeline_overrides(set_, **{"pipeline.workers": workers})
        _preflight()
        result = demo_flow(work_dir, seed=seed, overrides=overrides, show_progress=True)
    except (ConfigError, ServiceUnreachable) as exc:
        _fail(str(exc))
    pipeline = result.pipeline
    print_summary("demo: ingest", pipeline.get(IngestSummary))
    print_summary("demo: extract", pipeline.get(ExtractSummary))
    print_summary("demo: train", pipeline.get(TrainSummary))
    table = Table("held-out frame", "motion potential (px)", title="demo: predicted flow of still frames")
    for row in result.predictions:
        table.add_row(row["image"], str(row.get("motion_potential_px", row["error"])))
    console.print(table)
    console.print(f"Predictions (flow images, .npy flow, colour-wheel PNGs) in {work_dir}/predictions")
    console.print(f"report, per-class table and best/worst examples in {pipeline.get(EvaluationSummary).out_dir}")
    console.print(f"confusion matrices and per-seed results in {pipeline.get(RecognitionSummary).out_dir}")
    console.print(f"motion-potential ranking and gallery in {pipeline.get(PotentialSummary).out_dir}")
    print_pipeline(pipeline)
    console.print(f"Read the store back with: im2flow inspect --work-dir {work_dir}; "
                  f"browse runs with: mlflow ui --backend-store-uri {pipeline.tracking_uri}")


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
