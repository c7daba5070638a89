"""The interop commands: `im2flow export` and `im2flow import-flow` (mmaction2 / TSN rawframes)."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from im2flow_cli.console_output import print_failures, print_summary
from im2flow_cli.options import ConfigFile, DaskAddress, WorkDir, Workers, _fail, _model_tracking_uri, _preflight, app
from im2flow_storage.datasets import DatasetError
from im2flow_storage.flow_store import FlowStoreError
from im2flow_storage.manifest import ManifestError
from im2flow_tasks.config import ConfigError, load_config


@app.command()
def export(out: Annotated[str, typer.Option("--out", help="output folder (local disk)")],
           work_dir: Annotated[Optional[str], typer.Option(
               "--work-dir", "-w", help="work directory with the flow store (and, for --hallucinated, the model "
               "registry)")] = None,
           format: Annotated[str, typer.Option("--format",
                                               help="rawframes (mmaction2 / TSN / denseflow)")] = "rawframes",
           bound: Annotated[Optional[float], typer.Option(help="flow ±B px → 0…255 (default 20)")] = None,
           store: Annotated[Optional[str], typer.Option(help="flow-store fingerprint, if several")] = None,
           split_index: Annotated[Optional[int], typer.Option(help="k in <name>_train_split_<k>_rawframes.txt")] = None,
           list_name: Annotated[Optional[str], typer.Option(help="<name> of the annotation lists")] = None,
           hallucinated: Annotated[bool, typer.Option("--hallucinated", help="export G's predicted flow")] = False,
           model: Annotated[Optional[str], typer.Option(help="--hallucinated: exported .pt or MLflow URI")] = None,
           split: Annotated[Optional[str], typer.Option(help="--hallucinated: only this split's videos")] = None,
           images: Annotated[Optional[list[str]], typer.Option(
               "--images", help="--hallucinated: still images or folders of them instead of the store "
               "(repeatable)")] = None,
           device: Annotated[Optional[str], typer.Option(help="--hallucinated: auto, cpu or cuda")] = None,
           overwrite: Annotated[bool, typer.Option("--overwrite", help="export into a non-empty folder that holds "
                                                   "no im2flow export, replacing folders of the same names")] = False,
           workers: Workers = None, dask_address: DaskAddress = None, config: ConfigFile = None) -> None:
    """Export frames and flow as rawframes folders + annotation lists for mmaction2/TSN (docs/interop.md)."""
    from im2flow_flows.export import export_flow
    from im2flow_services.dask_cluster import dask_scheduler, task_runner
    from im2flow_storage.rawframes import RawframesError
    from im2flow_tasks.interop_config import ExportConfig
    try:
        cfg = load_config(ExportConfig, config, "export", format=format, bound_px=bound, store_fingerprint=store,
                          split_index=split_index, list_name=list_name, hallucinated=hallucinated or None,
                          model=model, split=split, device=device, workers=workers, dask_address=dask_address,
                          overwrite=overwrite or None)
        if cfg.hallucinated:
            if not (model and _is_file(model)):  # the registry's model: its tracking store, resolved once
                uri = cfg.mlflow_tracking_uri or _model_tracking_uri(None, work_dir)
                cfg = cfg.model_copy(update={"mlflow_tracking_uri": uri})
            _preflight(cfg.mlflow_tracking_uri)
            summary = export_flow(work_dir, out, cfg, images, show_progress=True)
        else:
            with dask_scheduler(cfg.workers, cfg.dask_address) as address:
                _preflight(dask_address=cfg.dask_address)  # after the local cluster: it starts while the API boots
                summary = export_flow.with_options(task_runner=task_runner(address))(
                    work_dir, out, cfg, images, show_progress=True)
    except (ConfigError, FlowStoreError, ManifestError, RawframesError, ValueError, RuntimeError) as exc:
        _fail(str(exc))
    _print_outcome("export", summary)


@app.command("import-flow")
def import_flow(source: Annotated[str, typer.Argument(help="rawframes folder: <class>/<video>/img_*, flow_x_*, "
                                                      "flow_y_* (or <video>/ with annotation lists)")],
                work_dir: WorkDir,
                format: Annotated[str, typer.Option("--format", help="rawframes")] = "rawframes",
                bound: Annotated[Optional[float], typer.Option(help="bound the flow JPEGs were written with "
                                                               "(default 20)")] = None,
                layout: Annotated[Optional[str], typer.Option(help="labels/splits from: auto, mmaction, ucf101, "
                                                              "hmdb51 or folders")] = None,
                split_index: Annotated[Optional[int], typer.Option(help="official / list split 1-3")] = None,
                check_alignment: Annotated[Optional[bool], typer.Option(
                    "--check-alignment/--no-check-alignment", help="check flow k belongs to img k by content")] = None,
                workers: Workers = None, dask_address: DaskAddress = None, config: ConfigFile = None) -> None:
    """Import precomputed flow (denseflow / TSN rawframes) as a flow store that every stage can use."""
    from im2flow_flows.import_rawframes import import_flow as run_import
    from im2flow_services.dask_cluster import dask_scheduler, task_runner
    from im2flow_storage.rawframes import RawframesError
    from im2flow_tasks.interop_config import ImportConfig
    try:
        cfg = load_config(ImportConfig, config, "import", format=format, bound_px=bound, layout=layout,
                          split_index=split_index, check_alignment=check_alignment, workers=workers,
                          dask_address=dask_address)
        with dask_scheduler(cfg.workers, cfg.dask_address) as address:
            _preflight(dask_address=cfg.dask_address)  # after the local cluster: it starts while the API boots
            summary = run_import.with_options(task_runner=task_runner(address))(source, work_dir, cfg,
                                                                               show_progress=True)
    except (ConfigError, DatasetError, ManifestError, FlowStoreError, RawframesError, RuntimeError) as exc:
        _fail(str(exc))
    _print_outcome("import-flow", summary)


def _print_outcome(title: str, summary: Any) -> None:
    """The summary table (an export or import summary), then each failure with its reason; exit status 1 if
    anything failed."""
    print_summary(title, summary)
    print_failures(summary.failures, summary.report)
    if summary.failures:
        raise typer.Exit(1)


def _is_file(model: str) -> bool:
    from im2flow_tasks.models import is_model_file
    return is_model_file(model)
