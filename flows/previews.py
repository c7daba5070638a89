"""Markdown for the Prefect UI: frames beside their colour-wheel flow, embedded as PNG data URIs."""

from __future__ import annotations

import base64

import cv2
import numpy as np

from flows.galleries import flow_row
from im2flow_storage.flow_store import FlowStore


def png_data_uri(rgb: np.ndarray) -> str:
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode()


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
        strip = flow_row(rgb, [flow], video_id, tile=round(rgb.shape[0] * width / rgb.shape[1]))
        peak = float(np.hypot(flow[..., 0], flow[..., 1]).max())
        lines += [f"**{video_id}** ({record.label}) — frame {t}, max {peak:.2f} px", "",
                  f"![{video_id}]({png_data_uri(strip)})", ""]
    return "\n".join(lines)
