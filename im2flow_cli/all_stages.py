"""The whole-pipeline commands: `im2flow pipeline`, `im2flow serve` (a scheduled deployment) and `im2flow demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from im2flow_cli.console_output import console, print_pipeline, print_summary
from im2flow_cli.options import DaskAddress, WorkDir, Workers, _fail, _preflight, _tracking_uri, app
from im2flow_core.optical_flow import FlowAlgorithm
from im2flow_storage.datasets import DatasetError
from im2flow_storage.flow_store import FlowStoreError
from im2flow_storage.manifest import ManifestError
from im2flow_tasks.config import ConfigError

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
