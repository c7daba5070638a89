"""Report files a run leaves in the work directory: the extraction report and evaluation outputs."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from im2flow_storage.paths import ensure_dir, filesystem, join

EXTRACT_REPORT_SCHEMA = pa.schema([("video_id", pa.string()), ("status", pa.string()), ("error", pa.string()),
                                   ("n_frames", pa.int64()), ("n_flows", pa.int64()), ("seconds", pa.float64())])


def _write_store_report(store_url: str, outcomes: list[Mapping[str, Any]], schema: pa.Schema) -> str:
    """`outcomes` (the schema's columns) as `<store>.report.parquet` beside the store; returns its URL."""
    url = store_url[: -len(".zarr")] + ".report.parquet"
    fs, path = filesystem(url)
    rows = [{c: o.get(c) for c in schema.names} for o in outcomes]
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, filesystem=fs)
    return url


def write_extract_report(store_url: str, outcomes: list[Mapping[str, Any]]) -> str:
    """Per-video outcome of an extraction run, beside its store (`<store>.report.parquet`); returns the URL."""
    return _write_store_report(store_url, outcomes, EXTRACT_REPORT_SCHEMA)


IMPORT_REPORT_SCHEMA = pa.schema([("video_id", pa.string()), ("path", pa.string()), ("status", pa.string()),
                                  ("error", pa.string()), ("numbering", pa.string()), ("n_frames", pa.int64()),
                                  ("n_flows", pa.int64()), ("at_bound", pa.int64()), ("seconds", pa.float64())])


def write_import_report(store_url: str, outcomes: list[Mapping[str, Any]]) -> str:
    """Per-folder outcome of a rawframes import beside its store (`<store>.report.parquet`); returns the URL."""
    return _write_store_report(store_url, outcomes, IMPORT_REPORT_SCHEMA)


def write_report_files(out_dir: str, files: Mapping[str, str | bytes]) -> list[str]:
    """Write named text or binary files into `out_dir` (a path or fsspec URL); returns their URLs."""
    ensure_dir(out_dir)
    urls = []
    for name, content in files.items():
        url = join(out_dir, name)
        fs, path = filesystem(url)
        with fs.open(path, "wb") as handle:
            handle.write(content if isinstance(content, bytes) else content.encode())
        urls.append(url)
    return urls


def readable_number(value: Any, digits: int = 6) -> Any:
    """`value` with floats (numpy's included) written to `digits` significant digits, not Python's 17
    (`0.30000000000000004` → `0.3`); anything else unchanged."""
    if isinstance(value, (float, np.floating)) and not isinstance(value, bool):
        return f"{float(value):.{digits}g}"
    return value


def csv_text(rows: list[dict[str, Any]]) -> str:
    """Rows of equal keys as CSV text with a header (the first row's keys, in order); floats to 6 significant
    digits."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, list(rows[0]))
    writer.writeheader()
    writer.writerows({k: readable_number(v) for k, v in row.items()} for row in rows)
    return buffer.getvalue()
