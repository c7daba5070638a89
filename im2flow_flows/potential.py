"""The potential flow: rank still images, or a split's frames, by motion potential (how much motion an
image implies), with rank agreement against the true motion and a gallery of the top and bottom."""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from im2flow_storage.paths import potential_url, split_name
from im2flow_tasks.config import EvalConfig
from im2flow_tasks.outcomes import write_report
from im2flow_tasks.potential import POTENTIAL_NOTE, agreement_markdown
from im2flow_tasks.potential_ranking import rank_by_potential
from im2flow_tasks.previews import png_data_uri
from im2flow_tasks.report_runs import log_report_run
from im2flow_tasks.run_labels import publish_markdown
from im2flow_tasks.summaries import PotentialSummary, agreement_metrics
from im2flow_tasks.tracking import git_commit, now_ms, ready_tracking_uri


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
                   show_progress: bool = False) -> PotentialSummary:
    """Rank still images (files or folders) by motion potential, or with `images` None `frames_per_video`
    evenly spaced frames (`video_id@t`) of every video of `config.split`, scored against their true mean
    magnitude beside the nearest-neighbour baseline (the frames `evaluate` scores).

    Unreadable images are named and skipped. Writes ranking.csv, agreement.csv, gallery.png (top and
    bottom of the ranking, with their true motion when known) and skipped.csv; logs ρ and τ to MLflow.
    `show_progress`: terminal bars (the Prefect UI always gets progress artifacts).
    """
    started_ms = now_ms()  # the MLflow run spans the work, though it is opened after it
    tracking_uri = ready_tracking_uri(work_dir, config.mlflow_tracking_uri)
    ranking = rank_by_potential(work_dir, images, config, tracking_uri, show_progress)
    out_dir = potential_url(work_dir, None if images else config.split_index)
    paths = write_report(out_dir, ranking.report_files(), "potential")
    run_name = "potential" if images or config.split_index is None else f"potential-split{config.split_index}"
    run_id = log_report_run(tracking_uri, config.experiment, run_name, {"git_commit": git_commit()}, {}, paths,
                            agreement_metrics(ranking.agreement), started_ms)
    publish_markdown("motion-potential",
                     "# Motion potential\n\n" + POTENTIAL_NOTE + "\n\n"
                     + (agreement_markdown(ranking.agreement) + "\n\n" if ranking.agreement else "")
                     + f"![gallery]({png_data_uri(ranking.gallery)})",
                     work_dir, "Images ranked by how much motion they imply")
    return PotentialSummary(ranking=ranking.table, agreement=ranking.agreement, skipped=ranking.skipped,
                            skipped_errors=ranking.problems, out_dir=out_dir, run_id=run_id, note=POTENTIAL_NOTE,
                            files=paths)
