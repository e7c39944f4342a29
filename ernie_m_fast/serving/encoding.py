"""Response bodies as JSON bytes: orjson when installed (the `[serve]` extra brings it), else the json module.

Embeddings and scores stay float32 numpy arrays up to here. orjson writes them natively, as the
shortest text that reads back to the same float32 (what TEI's serde writes for its f32 values), in a
fraction of the time `json.dumps` takes over Python floats: a 768-float embedding is ~0.3 ms of
`json.dumps` and ~0.02 ms of orjson. The json fallback writes each float32 as its float64 value.
"""

from __future__ import annotations

import json

try:
    import orjson
except ImportError:  # pragma: no cover - orjson comes with the [serve] extra
    orjson = None


def _plain(value):
    """json.dumps' fallback for numpy scalars and arrays: Python numbers and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_bytes(body) -> bytes:
    if orjson is not None:
        return orjson.dumps(body, default=_plain, option=orjson.OPT_SERIALIZE_NUMPY)
    return json.dumps(body, ensure_ascii=False, default=_plain).encode()
