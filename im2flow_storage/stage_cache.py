"""The pipeline's stage cache: one plain JSON record per stage and cache key, never a pickle.

Layout (`<work_dir>/pipeline-cache/`, local or any fsspec URL):
- `<stage>-<key>.json`: `{"format": "im2flow-stage-cache", "version": 1, "stage", "key", "summary"}`,
  where `summary` is the stage's summary as JSON (numbers, strings, lists, objects) and `key` a
  digest of what the stage reads (see `im2flow_flows.pipeline`). Written to a temporary name, then moved.

Reading parses JSON and nothing else: a record of another format (Prefect's result records, whose
`serializer` may say pickle, or anything else planted there) is refused and treated as a miss, so
the stage runs again and its own record replaces it. A work dir on shared disk or S3 is writable by
more people than the machine that reads it; nothing read from it may run code.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePath
from typing import Any

from im2flow_storage.paths import filesystem, join

RECORD_FORMAT = "im2flow-stage-cache"
RECORD_VERSION = 1
_NAME_PART = re.compile(r"^[A-Za-z0-9_-]+$")


class StageCacheError(Exception):
    """A stage cache record exists but is not ours (another format, bad JSON): the message says why."""


def plain_json(value: Any) -> Any:
    """`value` as plain JSON data: numpy scalars and arrays become numbers and lists, paths strings.

    Non-finite floats stay (written as Python's json writes them, `NaN`, and read back as NaN: a
    method that cannot rank reports NaN, and a cached summary must equal a fresh one). Raises
    TypeError for anything else (an object that would need pickling is not a summary).
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":
        return plain_json(value.tolist())
    raise TypeError(f"a stage summary holds {type(value).__name__}, which is not plain JSON data")


def record_url(cache_url: str, stage: str, key: str) -> str:
    """URL of the record of `stage` under `key` (both plain names: letters, digits, - and _)."""
    for part in (stage, key):
        if not _NAME_PART.fullmatch(part):
            raise ValueError(f"stage cache names must be letters, digits, - and _, got {part!r}")
    return join(cache_url, f"{stage}-{key}.json")


def read_stage_record(cache_url: str, stage: str, key: str) -> dict[str, Any] | None:
    """The cached summary of `stage` under `key`, None when there is none.

    StageCacheError when a file is there but is not our record (it is never unpickled or evaluated).
    """
    fs, path = filesystem(record_url(cache_url, stage, key))
    try:
        raw = fs.cat_file(path)
    except FileNotFoundError:
        return None
    try:
        record = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StageCacheError(f"{path}: not JSON ({exc})") from None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        found = record.get("metadata", {}).get("serializer") if isinstance(record, dict) and isinstance(
            record.get("metadata"), dict) else None
        raise StageCacheError(f"{path}: not an im2flow stage record"
                              + (f" (serializer {found!r})" if found else ""))
    if record.get("version") != RECORD_VERSION or record.get("stage") != stage or record.get("key") != key:
        raise StageCacheError(f"{path}: a record of another version, stage or key")
    if not isinstance(record.get("summary"), dict):
        raise StageCacheError(f"{path}: its summary is not an object")
    return record["summary"]


def write_stage_record(cache_url: str, stage: str, key: str, summary: dict[str, Any]) -> dict[str, Any]:
    """Write `summary` (plain JSON data, see `plain_json`) as the record of `stage` under `key`.

    Returns the summary as it will read back (so a fresh run and a cached one hand on equal data).
    """
    url = record_url(cache_url, stage, key)
    data = plain_json(summary)
    fs, path = filesystem(url)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    text = json.dumps({"format": RECORD_FORMAT, "version": RECORD_VERSION, "stage": stage, "key": key,
                       "summary": data})
    tmp = path + ".tmp"
    fs.pipe_file(tmp, text.encode())
    fs.mv(tmp, path)
    return json.loads(text)["summary"]
