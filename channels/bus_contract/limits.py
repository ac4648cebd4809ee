"""How big a bus message may be: the one home of the limits every reader of the bus enforces.

A peer on the broker can publish anything to any topic it may write. Every
reader refuses a payload over its limit before parsing it, and asks the
broker (MQTT v5 ``Maximum Packet Size`` on connect) not to deliver packets
much bigger than that at all: mosquitto drops them instead of sending them.
Between the payload limit and the packet limit the reader sees the message
and refuses it itself (a command gets ``bad_payload``).

- ``MAX_PAYLOAD_BYTES``: a command (``cmd/<verb>``), a state or an event;
- ``MAX_REPLY_BYTES``: a command's reply (``calls/list`` of 200 calls with their summaries);
- ``PACKET_HEADROOM_BYTES``: the topic and the MQTT properties around a payload.
"""

from __future__ import annotations

from typing import Final

MAX_PAYLOAD_BYTES: Final = 64 * 1024
MAX_REPLY_BYTES: Final = 1024 * 1024
PACKET_HEADROOM_BYTES: Final = 8 * 1024

DAEMON_MAX_PACKET_BYTES: Final = MAX_PAYLOAD_BYTES + PACKET_HEADROOM_BYTES  # the daemon reads commands only
CHANNEL_MAX_PACKET_BYTES: Final = MAX_REPLY_BYTES + PACKET_HEADROOM_BYTES  # a channel reads replies too


def over_limit(payload: bytes, limit: int) -> str | None:
    """Why ``payload`` is refused for its size (a message a log line or an error reply can carry); None if it fits."""
    if len(payload) > limit:
        return f"payload is {len(payload)} bytes, limit {limit}"
    return None
