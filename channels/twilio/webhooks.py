"""Twilio's webhooks: the call arrives (``/twilio/voice``), and without Media Streams the ``<Gather>`` conversation.

``POST /twilio/voice``: with Media Streams, ``<Connect><Stream>`` to
``/twilio/stream`` carrying the caller and called numbers and the stream's
signed grant (``stream_grants.py``: the stream is accepted for this call
only, once, within a minute); the ``<Connect>``
action ``/twilio/stream-ended`` hangs up after a call the secretary finished,
or apologises and takes a voicemail when the secretary was not there.
Without Media Streams (the fallback): the persona's greeting in a speech
``<Gather>``; each ``/twilio/gather`` turn asks the box (``cmd/chat``, history
per CallSid) and says the answer in the next ``<Gather>``. When the box
cannot chat (no conversational model, the bus or model down, Twilio's 15 s
webhook deadline near) the caller is asked to leave a message:
``<Record>`` -> ``/twilio/recorded`` -> a voicemail hand-off. ``/twilio/status``
(the number's status callback) ends what is left of a finished call.
"""

from __future__ import annotations

import logging
from typing import Any, Final, Protocol

from aiohttp import web

from channels.bus_client import BusUnavailable, CommandFailed
from channels.bus_contract.verbs import CHAT
from channels.twilio import twiml
from channels.twilio.calls import CallRegistry, TwilioCall, persona_for
from channels.twilio.handoff import Handoffs
from channels.twilio.signature import websocket_base
from channels.twilio.stream_grants import StreamGrants
from config.persona_schema import PersonaConfig
from config.schema import SecretaryConfig

log = logging.getLogger("secretary.channels.twilio")

VOICE_PATH: Final = "/twilio/voice"
GATHER_PATH: Final = "/twilio/gather"
RECORDED_PATH: Final = "/twilio/recorded"
STATUS_PATH: Final = "/twilio/status"
STREAM_PATH: Final = "/twilio/stream"
STREAM_ENDED_PATH: Final = "/twilio/stream-ended"
CHAT_TIMEOUT_S: Final = 11.0  # Twilio gives a webhook 15 s; the rest is for the network
MAX_TURNS: Final = 30
FINAL_STATUSES: Final = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
TWIML: Final = "application/xml"


class ChatBus(Protocol):
    async def request(self, verb: str, args: dict[str, Any] | None = None, *, timeout_s: float = 10.0) -> Any: ...


class TwilioWebhooks:
    def __init__(
        self, config: SecretaryConfig, calls: CallRegistry, bus: ChatBus, handoffs: Handoffs, grants: StreamGrants,
    ) -> None:
        self.config = config
        self.twilio = config.channels.twilio
        self.public_url = self.twilio.public_url or ""
        self.calls = calls
        self.bus = bus
        self.handoffs = handoffs
        self.grants = grants

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(VOICE_PATH, self.voice),
            web.post(GATHER_PATH, self.gather),
            web.post(RECORDED_PATH, self.recorded),
            web.post(STREAM_ENDED_PATH, self.stream_ended),
            web.post(STATUS_PATH, self.status),
        ]

    # -- the call arrives ---------------------------------------------------------------
    async def voice(self, request: web.Request) -> web.Response:
        form = await request.post()
        call = self._call(form)
        if call is None:
            return web.Response(status=400, text="CallSid is missing")
        persona = self._persona(call)
        log.info("twilio call", extra={"call_sid": call.sid, "caller": call.caller, "called": call.called,
                                       "persona": call.persona, "media_streams": self.twilio.media_streams})
        if self.twilio.media_streams:
            parameters = self.grants.issue(call.sid, call.caller, call.called)
            stream_url = websocket_base(self.public_url) + STREAM_PATH
            return _twiml(twiml.stream_twiml(stream_url, self.public_url + STREAM_ENDED_PATH, parameters))
        return _twiml(twiml.gather_twiml(persona.greeting, persona.language, self.public_url + GATHER_PATH))

    async def stream_ended(self, request: web.Request) -> web.Response:
        """The ``<Connect>`` action: the media stream is over and the call is still up."""
        form = await request.post()
        call = self._call(form, remember=False)
        if call is None:
            return web.Response(status=400, text="CallSid is missing")
        persona = self._persona(call)
        if call.stream_outcome == "ended":
            return _twiml(twiml.goodbye_twiml(None, persona.language))
        log.warning("twilio call without the secretary: voicemail", extra={"call_sid": call.sid,
                                                                           "stream": call.stream_outcome})
        return self._voicemail(persona, twiml.LINE_DOWN)

    # -- the <Gather> conversation ------------------------------------------------------
    async def gather(self, request: web.Request) -> web.Response:
        form = await request.post()
        call = self._call(form)
        if call is None:
            return web.Response(status=400, text="CallSid is missing")
        persona = self._persona(call)
        heard = str(form.get("SpeechResult") or "").strip()
        if not heard:
            return self._voicemail(persona, twiml.NOT_HEARD)
        if call.turns >= MAX_TURNS:
            return _twiml(twiml.goodbye_twiml(persona.goodbye, persona.language))
        args = {"persona": call.persona, "history": call.messages(), "text": heard, "voice_reply": False,
                "session": call.sid, "audience": "caller"}
        try:
            result = await self.bus.request(CHAT, args, timeout_s=CHAT_TIMEOUT_S)
        except CommandFailed as exc:
            log.warning("chat refused: voicemail", extra={"call_sid": call.sid, "code": exc.code,
                                                          "error": exc.message})
            return self._voicemail(persona, twiml.VOICEMAIL)
        except (BusUnavailable, TimeoutError) as exc:
            log.warning("the box cannot chat: voicemail", extra={"call_sid": call.sid, "error": str(exc)})
            return self._voicemail(persona, twiml.VOICEMAIL)
        answer = str(result.get("text") or "").strip() if isinstance(result, dict) else ""
        if not answer:
            return self._voicemail(persona, twiml.VOICEMAIL)
        call.add_exchange(heard, answer)
        return _twiml(twiml.gather_twiml(answer, persona.language, self.public_url + GATHER_PATH))

    async def recorded(self, request: web.Request) -> web.Response:
        form = await request.post()
        call = self._call(form, remember=False)
        if call is None:
            return web.Response(status=400, text="CallSid is missing")
        persona = self._persona(call)
        recording = str(form.get("RecordingUrl") or "")
        if recording:
            args = {"channel": "twilio", "name": None, "number": call.caller or str(form.get("From") or ""),
                    "note": f"voicemail: {recording}", "session": call.sid}
            await self.handoffs.submit(call.sid, args)
            log.info("voicemail recorded", extra={"call_sid": call.sid, "recording": recording,
                                                  "duration_s": form.get("RecordingDuration")})
        return _twiml(twiml.goodbye_twiml(persona.goodbye, persona.language))

    # -- the call is over ---------------------------------------------------------------
    async def status(self, request: web.Request) -> web.Response:
        form = await request.post()
        sid = str(form.get("CallSid") or "")
        state = str(form.get("CallStatus") or "")
        if sid and state in FINAL_STATUSES:
            call = self.calls.drop(sid)
            if call is not None and call.stream is not None:
                call.stream.end(f"twilio call {state}")
            log.info("twilio call over", extra={"call_sid": sid, "status": state, "known": call is not None})
        return web.Response(status=204)

    # -- helpers ------------------------------------------------------------------------
    def _call(self, form: Any, *, remember: bool = True) -> TwilioCall | None:
        """The call the request is about; one seen for the first time is remembered unless ``remember`` is false
        (a late request after the status callback must not bring a finished call back)."""
        sid = str(form.get("CallSid") or "")
        if not sid:
            return None
        known = self.calls.get(sid)
        if known is not None:
            return known
        called = str(form.get("To") or "") or None
        caller = str(form.get("From") or "") or None
        persona = persona_for(self.config, called)
        if not remember:
            return TwilioCall(sid, persona, caller, called, created=0.0)
        return self.calls.open(sid, persona=persona, caller=caller, called=called)

    def _persona(self, call: TwilioCall) -> PersonaConfig:
        return self.config.personas[call.persona]

    def _voicemail(self, persona: PersonaConfig, table: dict[str, str]) -> web.Response:
        text = twiml.phrase(table, persona.language)
        return _twiml(twiml.voicemail_twiml(text, persona.language, self.public_url + RECORDED_PATH, persona.goodbye))


def _twiml(document: str) -> web.Response:
    return web.Response(text=document, content_type=TWIML)
