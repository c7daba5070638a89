"""Everything im2flow stores: Parquet manifests, Zarr flow stores, dataset layouts, fsspec URLs.

Reading a flow store back::

    from im2flow_storage import open_flow_store
    store = open_flow_store("work")            # a work directory, or a store URL (s3://...)
    for video_id in store.video_ids:
        rgb, flow = store.read_pair(video_id, 0)   # (H, W, 3) uint8, (H, W, 2) float32 px (u, v)
"""

from im2flow_storage import codecs as _codecs  # noqa: F401  (registers the zarr codecs)
from im2flow_storage.flow_store import FlowStore, FlowStoreError, list_flow_stores, open_flow_store
from im2flow_storage.video_writer import VideoRecord

__all__ = ["FlowStore", "FlowStoreError", "VideoRecord", "list_flow_stores", "open_flow_store"]
