"""``widget.js``, the script sites embed: read once when the server starts, served with an ETag."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

SCRIPT_PATH = Path(__file__).resolve().parent / "static" / "widget.js"


@dataclass(frozen=True)
class WidgetScript:
    body: bytes
    etag: str

    @classmethod
    def load(cls, path: Path = SCRIPT_PATH) -> WidgetScript:
        body = path.read_bytes()
        return cls(body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
