"""Only Twilio gets in: signed webhooks and a signed Media Streams upgrade, nothing else (the channel alone)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from twilio.request_validator import RequestValidator

from daemon.tools.private_broker import MosquittoBroker
from tests.channels.twilio.twilio_box import ACCOUNT_SID, CALLER, LIDIA_NUMBER, PUBLIC_URL, TOKEN, TOKEN_ENV, twilio_box
from tests.channels.twilio.twilio_client import TwilioStandIn, new_sid

pytestmark = pytest.mark.timeout(60)


async def test_unsigned_wrongly_signed_and_misdirected_webhooks_are_refused(
    tmp_path: Path, broker: MosquittoBroker,
) -> None:
    async with twilio_box(tmp_path, broker, with_daemon=False) as box, \
            TwilioStandIn(box.local_url, PUBLIC_URL, TOKEN, ACCOUNT_SID) as twilio:
        params = twilio.call_params(new_sid("CA"), CALLER, LIDIA_NUMBER)
        voice = PUBLIC_URL + "/twilio/voice"
        assert (await twilio.post(voice, params, signature=None))[0] == 403
        assert (await twilio.post(voice, params, signature="bm90IGEgc2lnbmF0dXJl"))[0] == 403
        other_token = RequestValidator("another-account-token").compute_signature(voice, params)
        assert (await twilio.post(voice, params, signature=other_token))[0] == 403
        for_another_url = twilio.validator.compute_signature("https://elsewhere.example.test/twilio/voice", params)
        assert (await twilio.post(voice, params, signature=for_another_url))[0] == 403
        for_another_path = twilio.validator.compute_signature(PUBLIC_URL + "/twilio/gather", params)
        assert (await twilio.post(voice, params, signature=for_another_path))[0] == 403
        tampered = twilio.validator.compute_signature(voice, params)
        assert (await twilio.post(voice, {**params, "From": "+19999999999"}, signature=tampered))[0] == 403
        for path in ("/twilio/gather", "/twilio/recorded", "/twilio/status", "/twilio/stream-ended"):
            assert (await twilio.post(PUBLIC_URL + path, params, signature=None))[0] == 403
        # signed for the public URL with a query string: accepted
        status, text = await twilio.post(voice + "?attempt=1", params)
        assert status == 200 and "<Connect" in text


async def test_the_media_stream_upgrade_needs_twilios_signature_for_the_wss_url(
    tmp_path: Path, broker: MosquittoBroker,
) -> None:
    async with twilio_box(tmp_path, broker, with_daemon=False) as box, \
            TwilioStandIn(box.local_url, PUBLIC_URL, TOKEN, ACCOUNT_SID) as twilio:
        stream = "wss://box.example.test/twilio/stream"
        for signature in (None, "bm90IGEgc2lnbmF0dXJl", twilio.validator.compute_signature(
                "https://box.example.test/twilio/stream", {}), twilio.validator.compute_signature(
                "wss://elsewhere.example.test/twilio/stream", {})):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await twilio.open_stream(stream, signature=signature)
            assert refused.value.status == 403
        ws = await twilio.open_stream(stream)  # signed like Twilio: accepted
        await ws.close()


async def test_without_the_auth_token_every_webhook_answers_503_and_the_channel_says_why(
    tmp_path: Path, broker: MosquittoBroker,
) -> None:
    environ = {"SECRETARY_TWILIO_ACCOUNT_SID": ACCOUNT_SID}
    async with twilio_box(tmp_path, broker, with_daemon=False, environ=environ) as box, \
            TwilioStandIn(box.local_url, PUBLIC_URL, TOKEN, ACCOUNT_SID) as twilio:
        params = twilio.call_params(new_sid("CA"), CALLER, LIDIA_NUMBER)
        for path in ("/twilio/voice", "/twilio/gather", "/twilio/recorded", "/twilio/status"):
            for signature in (True, None):
                assert (await twilio.post(PUBLIC_URL + path, params, signature=signature))[0] == 503
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await twilio.open_stream("wss://box.example.test/twilio/stream")
        assert refused.value.status == 503
    assert box.status.reports and all(state == "degraded" for state, _ in box.status.reports)
    assert TOKEN_ENV in box.status.reports[0][1] and "not set" in box.status.reports[0][1]
