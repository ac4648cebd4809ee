"""Chat with a persona over the bus: ``cmd/chat`` (streamed) and ``cmd/personas``.

Channels (Telegram, the website widget) keep their own bounded history and
send it with each request; the daemon stays stateless between requests. A
request carries text or a voice recording, and may ask for a spoken answer:

    cmd/chat {"persona": "lidia", "history": [{"role": "user"|"assistant", "text": "..."}],
              "text": "...", "audio_file": "<spool>/x.wav", "voice_reply": true,
              "llm": ["cloud"], "tts": ["piper"], "session": "telegram:owner:42"}

Audio never travels over MQTT: recordings and spoken answers are WAV files in
``data_dir/spool/chat`` (the only directory this command reads or writes).
Partial replies carry ``{"heard": ...}`` once the recording is transcribed and
``{"delta": ...}`` as the model writes; the final reply is
``{"text", "heard", "audio_file", "persona", "backend"}``. Without a
conversational LLM the command refuses with ``no_llm`` (no packaged model can
chat; calls are still answered by the scripted policy). ``cmd/speak
{"persona", "text"}`` says a text in a persona's voice (the web page's
voice test, ``secretary gpu setup``'s greeting) and answers
``{"audio_file", "persona", "backend", "first_audio_ms"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np

from channels.bus_contract import verbs
from config.persona_schema import PersonaConfig
from config.schema import SecretaryConfig
from daemon.bus.commands import CommandError, Emit
from daemon.dialogue.llm_dialogue import LANGUAGE_NAMES
from daemon.runtime.service import Service, ServiceStatus
from daemon.voices.persona_voice import PersonaVoice, spoken_at_rate
from drivers.audio import ENGINE_RATE, StreamingWavWriter, read_wav
from drivers.audio.pcm import float_to_int16
from engines.audio_format import from_int16
from engines.engine_status import EngineState
from engines.fallback_chain import ChainExhausted, RequestError
from engines.llm.interface import ChatMessage, ChatRequest
from engines.stt.interface import SttFinal

log = logging.getLogger("secretary.chat")

CHAT_TIMEOUT_S = 180.0
MAX_HISTORY = 40
MAX_TEXT_CHARS = 4000
MAX_SPOKEN_CHARS = 500
SPEAK_LOAD_WAIT_S = 60.0
MAX_RECORDING_S = 300.0
VOICE_RATE = 24_000
SPOOL_MAX_AGE_S = 3600.0
_ROLES = {"user", "assistant"}


AUDIENCES = {
    "owner": "You are now chatting in writing with the owner, the person you take calls and messages for.",
    "visitor": ("You are now chatting in writing with a visitor of the business's website. Help them with what the "
                "facts above allow, never invent anything else, and offer to take their name and phone number so "
                "the owner can call them back."),
    "caller": ("You are on the phone with a caller: your words are spoken aloud, so answer in short spoken "
               "sentences without lists or formatting, and offer to take a message for the owner."),
}


def chat_system_prompt(persona: PersonaConfig, now: float | None = None, audience: str = "owner") -> str:
    lines = [persona.system_prompt.strip(), ""]
    if persona.facts:
        lines.append("Facts you may share:")
        lines.extend(f"- {fact}" for fact in persona.facts)
        lines.append("")
    lines += [
        AUDIENCES[audience],
        f"Today is {time.strftime('%A %Y-%m-%d', time.localtime(now))}.",
        f"Answer in {LANGUAGE_NAMES.get(persona.language, persona.language)}, briefly and plainly.",
    ]
    return "\n".join(lines)


class ChatService(Service):
    name = "chat"

    def __init__(self, bus: Any, config: SecretaryConfig, engine: Callable[[str], Any]) -> None:
        self.bus = bus
        self.config = config
        self._engine_service = engine
        self.spool = config.data_dir / "spool" / "chat"

    def config_slice(self) -> Any:
        c = self.config
        return (c.personas, c.call.persona, c.data_dir, c.engines.llm.max_tokens, c.engines.llm.temperature,
                {k: b.model_dump() for k, b in c.engines.llm.backends.items()}, c.engines.llm.chain)

    async def run(self, status: ServiceStatus) -> None:
        self.spool.mkdir(parents=True, exist_ok=True)
        self.bus.register_command(verbs.CHAT, self._cmd_chat, streaming=True, timeout_s=CHAT_TIMEOUT_S)
        self.bus.register_command(verbs.PERSONAS, self._cmd_personas)
        self.bus.register_command(verbs.SPEAK, self._cmd_speak, timeout_s=CHAT_TIMEOUT_S)
        try:
            status.ready("chat ready" if self._conversational(None) else "no conversational LLM: chat refuses")
            while True:
                await asyncio.to_thread(_prune, self.spool, SPOOL_MAX_AGE_S)
                await asyncio.sleep(SPOOL_MAX_AGE_S / 4)
        finally:
            for verb in (verbs.CHAT, verbs.PERSONAS, verbs.SPEAK):
                self.bus.commands.unregister(verb)

    # -- commands -----------------------------------------------------------------------
    async def _cmd_speak(self, args: dict[str, Any]) -> dict[str, Any]:
        """``{persona, text}`` -> a WAV in the spool spoken in the persona's voice (the web page's voice preview)."""
        name, text = args.get("persona", self.config.call.persona), args.get("text")
        if not isinstance(name, str) or name not in self.config.personas:
            raise CommandError("invalid", f"persona must be one of {', '.join(sorted(self.config.personas))}")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_SPOKEN_CHARS:
            raise CommandError("invalid", f"text must be 1 to {MAX_SPOKEN_CHARS} characters")
        persona = self.config.personas[name]
        service = self._engine_service("tts")
        if service is not None and service.engine is None:  # just started: wait for the voice rather than refuse
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SPEAK_LOAD_WAIT_S):
                    await service.wait_loaded()
        first_audio: list[float] = []
        path = await self._speak(text.strip(), persona, None, first_audio)
        tts = self._engine("tts")
        backend = tts.status.backend if tts is not None else None
        return {"audio_file": str(path), "persona": name, "backend": backend,
                "first_audio_ms": round(first_audio[0], 1) if first_audio else None}

    async def _cmd_personas(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "default": self.config.call.persona,
            "personas": [
                {"id": name, "display_name": p.display_name, "language": p.language}
                for name, p in sorted(self.config.personas.items())
            ],
        }

    async def _cmd_chat(self, args: dict[str, Any], emit: Emit) -> dict[str, Any]:
        request = self._parse(args)
        persona_id, persona, history, text, audio_path, voice_reply, chain, tts_backends = request
        heard = None
        if audio_path is not None:
            heard = await self._transcribe(audio_path, persona.language)
            emit({"heard": heard})
            text = heard
        if not text:
            raise CommandError("not_understood", "nothing was recognised in the recording")
        if not self._conversational(chain, persona):
            raise CommandError(
                "no_llm",
                "chat needs a conversational language model and none is configured or up "
                "(engines.llm: a cloud or GPU backend with conversational: true); calls are still answered",
            )
        audience = args.get("audience", "owner")
        if audience not in AUDIENCES:
            raise CommandError("invalid", f"audience must be one of {', '.join(AUDIENCES)}")
        answer, backend = await self._answer(persona, history, text, chain, emit, audience)
        audio_file = None
        if voice_reply and answer:
            audio_file = str(await self._speak(answer, persona, tts_backends))
        log.info("chat answered", extra={"session": args.get("session"), "persona": persona_id, "backend": backend,
                                         "voice": audio_file is not None})
        return {"text": answer, "heard": heard, "audio_file": audio_file, "persona": persona_id, "backend": backend}

    def _parse(self, args: dict[str, Any]) -> tuple[
        str, PersonaConfig, list[ChatMessage], str | None, Path | None, bool, list[str] | None, tuple[str, ...] | None,
    ]:
        persona_id = args.get("persona") or self.config.call.persona
        if not isinstance(persona_id, str) or persona_id not in self.config.personas:
            raise CommandError("invalid", f"persona must be one of {', '.join(sorted(self.config.personas))}")
        persona = self.config.personas[persona_id]
        raw_history = args.get("history", [])
        if not isinstance(raw_history, list) or len(raw_history) > MAX_HISTORY:
            raise CommandError("invalid", f"history must be a list of at most {MAX_HISTORY} messages")
        history: list[ChatMessage] = []
        for item in raw_history:
            if (not isinstance(item, dict) or item.get("role") not in _ROLES or not isinstance(item.get("text"), str)
                    or len(item["text"]) > MAX_TEXT_CHARS):
                raise CommandError("invalid", 'each history item must be {"role": "user"|"assistant", "text": "..."}')
            history.append(ChatMessage(item["role"], item["text"]))
        text = args.get("text")
        if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT_CHARS):
            raise CommandError("invalid", f"text must be a string of at most {MAX_TEXT_CHARS} characters")
        audio = args.get("audio_file")
        audio_path = self._spool_path(audio) if audio is not None else None
        if audio_path is None and not (text or "").strip():
            raise CommandError("invalid", "give text or audio_file")
        chain = self._names(args.get("llm"), "llm", self.config.engines.llm.backends)
        tts = self._names(args.get("tts"), "tts", self.config.engines.tts.chain)
        return (persona_id, persona, history, (text or "").strip() or None, audio_path, bool(args.get("voice_reply")),
                chain, tuple(tts) if tts is not None else None)

    def _names(self, value: object, what: str, known: Any) -> list[str] | None:
        if value is None:
            return None
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v in known for v in value):
            raise CommandError("invalid", f"{what} must be a list of configured backends: {', '.join(sorted(known))}")
        return value

    def _spool_path(self, value: object) -> Path:
        if not isinstance(value, str):
            raise CommandError("invalid", "audio_file must be a path string")
        path = Path(value).resolve()
        if path.parent != self.spool.resolve() or path.suffix != ".wav":
            raise CommandError("invalid", f"audio_file must be a .wav file directly in {self.spool}")
        if not path.is_file():
            raise CommandError("invalid", f"audio_file {path.name} does not exist")
        return path

    # -- engines ------------------------------------------------------------------------
    def _engine(self, name: str) -> Any:
        service = self._engine_service(name)
        engine = service.engine if service is not None else None
        if engine is None or engine.status.state is EngineState.FAILED:
            return None
        return engine

    def _conversational(self, chain: list[str] | None, persona: PersonaConfig | None = None) -> bool:
        if self._engine("llm") is None:
            return False
        backends = self.config.engines.llm.backends
        names = chain or (persona.llm.chain if persona is not None and persona.llm.chain else None)
        names = names or list(self.config.engines.llm.chain)
        return any(backends[n].is_conversational for n in names if n in backends)

    async def _transcribe(self, path: Path, language: str) -> str:
        stt = self._engine("stt")
        if stt is None:
            raise CommandError("unavailable", "speech recognition is not loaded")
        try:
            pcm, rate = await asyncio.to_thread(read_wav, path)
        except (OSError, ValueError) as exc:
            raise CommandError("invalid", f"audio_file is not a readable WAV: {exc}") from None
        if rate != verbs.CHAT_AUDIO_RATE:
            raise CommandError("invalid", f"audio_file must be 16 kHz mono PCM16, got {rate} Hz")
        if len(pcm) > MAX_RECORDING_S * verbs.CHAT_AUDIO_RATE:
            raise CommandError("invalid", f"the recording is longer than {MAX_RECORDING_S:g} s")
        samples = from_int16(pcm)  # the STT engine hears float32

        async def chunks() -> AsyncIterator[np.ndarray]:
            for start in range(0, len(samples), ENGINE_RATE):  # a second a chunk (the contract's rate is the engines')
                yield samples[start:start + ENGINE_RATE]

        final: SttFinal | None = None
        try:
            async with contextlib.aclosing(stt.transcribe(chunks(), language)) as events:
                async for event in events:
                    if isinstance(event, SttFinal):
                        final = event
        except (ChainExhausted, RequestError) as exc:
            raise CommandError("unavailable", f"speech recognition failed: {exc}") from None
        return final.text.strip() if final is not None else ""

    async def _answer(
        self, persona: PersonaConfig, history: list[ChatMessage], text: str, chain: list[str] | None, emit: Emit,
        audience: str = "owner",
    ) -> tuple[str, str]:
        llm = self._engine("llm")
        assert llm is not None
        llm_cfg = self.config.engines.llm
        request = ChatRequest(
            messages=(ChatMessage("system", chat_system_prompt(persona, audience=audience)), *history, ChatMessage("user", text)),
            max_tokens=llm_cfg.max_tokens, temperature=llm_cfg.temperature, persona=persona.llm.lora,
        )
        parts: list[str] = []
        backend = "?"
        try:
            async with contextlib.aclosing(llm.stream(request, chain or persona.llm.chain)) as deltas:
                async for delta in deltas:
                    if delta.text:
                        if not parts:
                            with contextlib.suppress(Exception):
                                backend = llm.label_of(llm.chain.active)
                        parts.append(delta.text)
                        emit({"delta": delta.text})
        except (ChainExhausted, RequestError) as exc:
            raise CommandError("unavailable", f"no language model could answer: {exc}") from None
        return "".join(parts).strip(), backend

    async def _speak(
        self, text: str, persona: PersonaConfig, backends: tuple[str, ...] | None, timing: list[float] | None = None,
    ) -> Path:
        """The spoken ``text`` as a spool WAV; ``timing`` gets the ms from the request to the first audio."""
        tts = self._engine("tts")
        if tts is None:
            raise CommandError("unavailable", "speech synthesis is not loaded")
        path = self.spool / f"reply-{uuid.uuid4().hex}.wav"
        writer = StreamingWavWriter(path, VOICE_RATE)
        started = time.perf_counter()
        try:
            async for part in spoken_at_rate(tts, PersonaVoice.of(persona), text, VOICE_RATE, backends):
                if timing is not None and not timing and len(part):
                    timing.append((time.perf_counter() - started) * 1000)
                writer.write(float_to_int16(part))
        except (ChainExhausted, RequestError) as exc:
            writer.close()
            path.unlink(missing_ok=True)
            raise CommandError("unavailable", f"no voice could speak the answer: {exc}") from None
        writer.close()
        return path


def _prune(spool: Path, max_age_s: float) -> None:
    """Spool files a channel never collected (it crashed mid-request) are deleted after an hour."""
    cutoff = time.time() - max_age_s
    for path in spool.glob("*.wav"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
