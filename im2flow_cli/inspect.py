"""What `im2flow inspect` shows: each flow store's configuration and its videos."""

from __future__ import annotations

from typing import Any

from im2flow_storage.flow_store import list_flow_stores
from im2flow_storage.manifest import ManifestError, read_manifest


def describe_work_dir(work_dir: str) -> dict[str, Any]:
    """`{"stores": [{"fingerprint", "url", "config", "versions", "videos": [...]}]}` for `work_dir`.

    Each store lists its videos, plus the manifest's ok videos it does not hold yet (complete false).
    """
    try:
        ok_rows = [r for r in read_manifest(work_dir) if r["status"] == "ok"]
    except ManifestError:
        ok_rows = []
    stores = []
    for store in list_flow_stores(work_dir):
        videos = {r.video_id: {"video_id": r.video_id, "label": r.label, "split": r.split, "n_frames": r.n_frames,
                               "n_flows": r.n_flows, "complete": r.complete} for r in store.records()}
        for row in ok_rows:
            videos.setdefault(row["video_id"], {"video_id": row["video_id"], "label": row["label"],
                                                "split": row["split"], "n_frames": 0, "n_flows": 0, "complete": False})
        stores.append({"fingerprint": store.fingerprint, "url": store.url, "config": store.config,
                       "versions": store.meta.get("versions", {}),
                       "videos": [videos[k] for k in sorted(videos)]})
    return {"stores": stores}
