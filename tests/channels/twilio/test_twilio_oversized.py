"""A Twilio media stream that sends garbage or an oversized message is refused; the bridge goes on serving.

The real channel server (aiohttp) and a Twilio stand-in that speaks the
Media Streams WebSocket protocol; no daemon needed before ``start``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from aiohttp import WSCloseCode

from channels.twilio.media_stream import MAX_MESSAGE_BYTES
from daemon.tools.private_broker import MosquittoBroker
from tests.channels.twilio.twilio_box import ACCOUNT_SID, PUBLIC_URL, TOKEN, twilio_box
from tests.channels.twilio.twilio_client import TwilioStandIn

STREAM_URL = "wss://box.example.test/twilio/stream"


async def test_garbage_is_logged_once_and_an_oversized_message_closes_with_1009(
    tmp_path: Path, broker: MosquittoBroker, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "secretary.channels.twilio")
    async with twilio_box(tmp_path, broker, with_daemon=False) as box, \
            TwilioStandIn(box.local_url, PUBLIC_URL, TOKEN, ACCOUNT_SID) as twilio:
        ws = await twilio.open_stream(STREAM_URL)
        for _ in range(20):
            await ws.send_str("{broken")
            await ws.send_str("[" * 5000)
            await ws.send_str('"a string"')
            await ws.send_bytes(b"\x00\x01")
        await ws.send_str('{"event": "media", "pad": "' + "a" * MAX_MESSAGE_BYTES + '"}')
        message = await ws.receive(timeout=5)
        assert message.type.name in ("CLOSE", "CLOSED") and ws.close_code == WSCloseCode.MESSAGE_TOO_BIG
        await ws.close()
        bad = [r for r in caplog.records if "twilio media stream: bad payload" in r.getMessage()]
        assert len(bad) <= 1, [r.getMessage() for r in bad]  # 80 bad messages: one line (none if logged just before)

        # the next stream is served as ever: a start it cannot take is refused with its own reason
        ws = await twilio.open_stream(STREAM_URL)
        await ws.send_json({"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": {
            "accountSid": ACCOUNT_SID, "streamSid": "MZ1", "callSid": "CA1", "tracks": ["inbound"],
            "customParameters": {}, "mediaFormat": {"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 1}}})
        message = await ws.receive(timeout=5)
        assert message.type.name in ("CLOSE", "CLOSED") and ws.close_code == WSCloseCode.UNSUPPORTED_DATA
        await ws.close()
