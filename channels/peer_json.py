"""JSON that a peer sent (a bus message, a WebSocket or line-socket frame): parsed without letting it crash the reader.

``json.loads`` raises ``RecursionError``, not ``ValueError``, on deep or
unclosed nesting (``"[" * 1000`` is enough), so a reader that catches only
``JSONDecodeError`` dies on one malformed message; a retained one on the broker
keeps it in a crash loop. ``parse_peer_json`` turns every way such input can
fail into one ``BadJson`` with a message a log line or an error reply can
carry. The daemon and every channel read peers' JSON through it.
"""

from __future__ import annotations

import json
from typing import Any


class BadJson(ValueError):
    """What a peer sent is not JSON we can read; the message says why."""


def parse_peer_json(data: bytes | bytearray | str) -> Any:
    """The JSON value in ``data``; ``BadJson`` for bytes that are not UTF-8, text that is not JSON, or nesting too deep."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        return json.loads(text)
    except UnicodeDecodeError:
        raise BadJson("not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadJson(f"not JSON: {exc.msg} at position {exc.pos}") from None
    except RecursionError:
        raise BadJson("not JSON we accept: nested too deeply") from None
