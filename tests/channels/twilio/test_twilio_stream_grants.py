"""A media stream is served only for a call a signed ``/twilio/voice`` opened moments ago, and only once.

Over the real aiohttp server with a real WebSocket client: the stand-in
Twilio (``twilio_client.py``) posts the signed webhook, reads the TwiML, and
opens the signed upgrade; each test then sends the ``start`` Twilio would (or
a forged one) and reads how the box closes the stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from daemon.tools.private_broker import MosquittoBroker
from tests.channels.twilio.twilio_box import (
    ACCOUNT_SID,
    BASE,
    CALLER,
    GULYA_NUMBER,
    LIDIA_NUMBER,
    PUBLIC_URL,
    TOKEN,
    twilio_box,
)
from tests.channels.twilio.twilio_client import TwilioStandIn, new_sid
from tests.support.mqtt_watch import MqttWatch

pytestmark = pytest.mark.timeout(120)
STREAM_URL = "wss://box.example.test/twilio/stream"
POLICY_VIOLATION = 1008
REFUSED = "twilio media stream refused"


async def voice(twilio: TwilioStandIn, call_sid: str, caller: str = CALLER, called: str = LIDIA_NUMBER
                ) -> dict[str, str]:
    """The signed ``/twilio/voice`` Twilio posts for a new call; the ``<Stream>``'s parameters it answered with."""
    twiml = await twilio.webhook("/twilio/voice", twilio.call_params(call_sid, caller, called))
    stream = twiml.find("./Connect/Stream")
    assert stream is not None, ET.tostring(twiml)
    return {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}


async def start_stream(twilio: TwilioStandIn, call_sid: str, parameters: dict[str, Any]) -> int | None:
    """Open the signed upgrade, say ``connected`` and ``start`` as Twilio does; the code the box closes with."""
    ws = await twilio.open_stream(STREAM_URL)
    try:
        stream_sid = new_sid("MZ")
        await ws.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await ws.send_json({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid, "start": {
            "accountSid": ACCOUNT_SID, "streamSid": stream_sid, "callSid": call_sid, "tracks": ["inbound"],
            "customParameters": parameters,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
        message = await ws.receive(timeout=10)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), message
        return ws.close_code
    finally:
        await ws.close()


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [str(getattr(r, "error", "")) for r in caplog.records if r.getMessage() == REFUSED]


async def test_only_a_fresh_signed_call_gets_a_stream_once(
    tmp_path: Path, broker: MosquittoBroker, caplog: pytest.LogCaptureFixture,
) -> None:
    """Forged, tampered and expired starts are closed with 1008 and a reason; the signed one is served."""
    caplog.set_level(logging.INFO, logger="secretary.channels.twilio")
    async with twilio_box(tmp_path, broker, with_daemon=False) as box, \
            TwilioStandIn(box.local_url, PUBLIC_URL, TOKEN, ACCOUNT_SID) as twilio:
        assert box.channel is not None
        calls, grants = box.channel.calls, box.channel.grants

        # a forged start: a callSid no /voice ever named, with numbers of the forger's choosing
        forged = new_sid("CA")
        assert await start_stream(twilio, forged, {"caller": "+19995550000", "called": GULYA_NUMBER}) == \
            POLICY_VIOLATION
        assert "no stream grant" in refusals(caplog)[-1] and forged not in calls
        # ... and one that copies a real grant onto another callSid
        real = new_sid("CA")
        granted = await voice(twilio, real)
        assert set(granted) == {"caller", "called", "issued", "grant"}
        assert await start_stream(twilio, forged, granted) == POLICY_VIOLATION
        assert "does not match the call" in refusals(caplog)[-1] and forged not in calls

        # the real call's grant with From tampered: refused, and the grant is still there for Twilio's start
        tampered = {**granted, "caller": "+19995550000"}
        assert await start_stream(twilio, real, tampered) == POLICY_VIOLATION
        assert "does not match the call" in refusals(caplog)[-1]
        assert len(grants) == 1

        # the genuine start: served (no daemon here, so the bridge opens the call and finds no line: 1000)
        before = len(refusals(caplog))
        assert await start_stream(twilio, real, granted) == aiohttp.WSCloseCode.OK
        assert len(refusals(caplog)) == before and len(grants) == 0
        assert calls.get(real) is not None and calls.get(real).caller == CALLER  # type: ignore[union-attr]

        # the same start again (a replay of a captured stream): refused
        assert await start_stream(twilio, real, granted) == POLICY_VIOLATION
        assert "streamed already" in refusals(caplog)[-1]

        # a grant that waited too long: refused, and gone
        grants.ttl_s = 0.5
        late = new_sid("CA")
        late_grant = await voice(twilio, late)
        await asyncio.sleep(0.8)
        assert await start_stream(twilio, late, late_grant) == POLICY_VIOLATION
        assert "expired" in refusals(caplog)[-1] and len(grants) == 0
        assert await start_stream(twilio, late, late_grant) == POLICY_VIOLATION  # and stays refused

        # a second /voice for the same call replaces its grant: only the newest one starts the stream
        grants.ttl_s = 60.0
        again = new_sid("CA")
        first, second = await voice(twilio, again), await voice(twilio, again)
        assert await start_stream(twilio, again, first) == POLICY_VIOLATION
        assert "newer /twilio/voice" in refusals(caplog)[-1]
        assert await start_stream(twilio, again, second) == aiohttp.WSCloseCode.OK
    print("refusals:", json.dumps(refusals(caplog), indent=1))


@pytest.mark.slow
async def test_the_secretary_answers_the_signed_stream_with_its_signed_numbers_and_a_replay_is_refused(
    tmp_path: Path, broker: MosquittoBroker,
) -> None:
    async with twilio_box(tmp_path, broker) as box, MqttWatch(broker, f"{BASE}/call/event") as bus, \
            TwilioStandIn(box.local_url, PUBLIC_URL, TOKEN, ACCOUNT_SID) as twilio:
        call = await twilio.call(bytes(8000 * 2 * 4), caller=CALLER, called=GULYA_NUMBER)
        await bus.wait_for(lambda m: m.json()["type"] == "ended" and m.json()["call_id"] == call.call_sid,
                           timeout=30)
        assert call.media, "the secretary did not answer the signed stream"
        answered = [m.json() for m in bus.on(f"{BASE}/call/event") if m.json()["type"] == "answered"]
        assert [(a["call_id"], a["caller"]) for a in answered] == [(call.call_sid, CALLER)]

        # the captured start, replayed with its valid grant: refused before it reaches the secretary
        assert await start_stream(twilio, call.call_sid, call.parameters) == POLICY_VIOLATION
        await asyncio.sleep(1.0)
        answered = [m.json() for m in bus.on(f"{BASE}/call/event") if m.json()["type"] == "answered"]
        assert len(answered) == 1
    transcript = json.loads((box.data_dir / "calls" / call.call_sid / "transcript.json").read_text(encoding="utf-8"))
    assert transcript["persona"] == "gulya"  # the persona of the signed called number


def test_the_pending_table_is_bounded_and_forgets_the_oldest_first() -> None:
    from channels.twilio.stream_grants import GrantRefused, StreamGrants

    now = [0.0]
    grants = StreamGrants(ttl_s=60.0, max_pending=3, clock=lambda: now[0])
    issued = {sid: grants.issue(sid, CALLER, LIDIA_NUMBER) for sid in ("CA1", "CA2", "CA3", "CA4")}
    assert len(grants) == 3
    with pytest.raises(GrantRefused, match="pushed it out"):
        grants.redeem("CA1", issued["CA1"])  # the oldest went to make room
    assert grants.redeem("CA4", issued["CA4"]).caller == CALLER
    now[0] = 61.0
    grants.issue("CA5", CALLER, LIDIA_NUMBER)  # issuing sweeps out what expired
    assert len(grants) == 1
    with pytest.raises(GrantRefused, match="expired"):
        grants.redeem("CA2", issued["CA2"])
