"""Markdown for the Prefect UI: frames beside their colour-wheel flow, embedded as PNG data URIs."""

from __future__ import annotations

import base64

import cv2
import numpy as np

from im2flow_core.figures import MIN_TILE_PX, flow_row
from im2flow_storage.flow_store import FlowStore

# Prefect's server drops an event over 1.5 MB (PREFECT_EVENTS_MAXIMUM_SIZE_BYTES), and an artifact's
# event carries its markdown: a report's embedded images share this budget.
ARTIFACT_IMAGE_BUDGET = 1_000_000


def png_data_uri(rgb: np.ndarray, max_chars: int = ARTIFACT_IMAGE_BUDGET) -> str:
    """`rgb` `(H, W, 3)` uint8 as a PNG data URI of at most `max_chars` characters.

    An image whose PNG would be longer (a 101-class confusion matrix is ~3 MB) is shrunk by halves
    until it fits; the full-size file belongs in the run's report folder, not in the Prefect UI.
    """
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    while True:
        ok, png = cv2.imencode(".png", bgr)
        if not ok:
            raise ValueError("PNG encoding failed")
        uri = "data:image/png;base64," + base64.b64encode(png.tobytes()).decode()
        if len(uri) <= max_chars or min(bgr.shape[:2]) <= 16:
            return uri
        bgr = cv2.resize(bgr, (max(1, bgr.shape[1] // 2), max(1, bgr.shape[0] // 2)), interpolation=cv2.INTER_AREA)


def flow_previews_markdown(store: FlowStore, video_ids: list[str], max_videos: int = 6, width: int = 160) -> str:
    """Markdown showing, for up to `max_videos` complete videos, the middle frame and its flow.

    Each image is `frame | flow` side by side, the flow with the Middlebury colour wheel scaled to
    that frame's largest motion. Small (`width` px per half) so the artifact stays light.
    """
    lines = ["# Flow previews", "", "Middle frame of each video and its optical flow (Middlebury colours: hue = "
             "direction, saturation = speed, white = still).", ""]
    for video_id in video_ids[:max_videos]:
        record = store.record(video_id)
        if record is None or not record.complete or record.n_flows == 0:
            continue
        t = record.n_flows // 2
        rgb, flow = store.read_pair(video_id, t)
        height = max(MIN_TILE_PX, round(rgb.shape[0] * width / rgb.shape[1]))
        strip = flow_row(rgb, [flow], f"{video_id}: frame | flow", tile_px=height)
        peak = float(np.hypot(flow[..., 0], flow[..., 1]).max())
        lines += [f"**{video_id}** ({record.label}) — frame {t}, max {peak:.2f} px", "",
                  f"![{video_id}]({png_data_uri(strip, ARTIFACT_IMAGE_BUDGET // max(1, max_videos))})", ""]
    return "\n".join(lines)
