"""The Telegram channel: every configured bot, the bus connection they share, and the notification outbox.

Call endings, missed calls and SMS arrive on the bus (a persistent MQTT
session, so events published while the channel was down still arrive). Each
becomes notices (``notifications.py``) that go into the durable outbox once
per bot and user (``notify``), keyed by the event so a repeated event adds
nothing; each bot's sender then delivers them in order, retrying through
Telegram outages. The channel reads the call record from ``data_dir`` (the
caller's WAV track, converted once to an OGG/Opus voice note) but imports
nothing of the daemon.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Protocol

from channels.bus_client import ChannelBus
from channels.bus_contract.call_payloads import EndedEvent, MissedEvent, decode_call_event
from channels.bus_contract.clients import TELEGRAM, BusLogin
from channels.bus_contract.fields import PayloadError
from channels.bus_contract.message_payloads import CallbackRequestEvent, SmsReceivedEvent
from channels.bus_contract.topics import CALL_EVENT, CALLBACK_EVENT, SMS_EVENT, TELEGRAM_TOPICS
from channels.telegram.bot import TelegramBot
from channels.telegram.notifications import (
    Notice,
    call_notices,
    callback_request_notices,
    missed_call_notices,
    sms_notices,
)
from channels.telegram.outbox import NotificationOutbox
from channels.telegram.voice_notes import VoiceNoteError, wav_to_voice_note
from config.schema import SecretaryConfig

log = logging.getLogger("secretary.channels.telegram")

SUBSCRIPTIONS = list(TELEGRAM_TOPICS)
_SAFE_ID = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class StatusSink(Protocol):
    def ready(self, detail: str = "") -> None: ...

    def degraded(self, detail: str) -> None: ...


class TelegramChannel:
    def __init__(self, config: SecretaryConfig, tokens: dict[str, str | None], bus_login: BusLogin | None = None) -> None:
        self.config = config
        tg = config.channels.telegram
        self.data_dir = config.data_dir
        self.dir = config.data_dir / "telegram"
        self.spool = config.data_dir / "spool" / "chat"
        self.voice_dir = self.dir / "voice"
        self.events: asyncio.Queue[tuple[OwnerEvent, dict[str, Any]]] = asyncio.Queue()  # decoded, as it came
        self.bus = ChannelBus(
            config.mqtt, config.box_id, TELEGRAM.client_id(config.box_id), SUBSCRIPTIONS, self._on_message,
            login=bus_login,
        )
        self.outbox: NotificationOutbox | None = None
        self.bots: dict[str, TelegramBot] = {}
        self.missing_tokens = sorted(c.token_env for i, c in tg.bots.items() if not tokens.get(i))
        self._tokens = tokens

    def _on_message(self, suffix: str, payload: Any) -> None:
        """The events the owner hears about: missed and incoming ended calls, SMS, call-back requests."""
        if not isinstance(payload, dict):
            return
        try:
            event = _owner_event(suffix, payload)
        except PayloadError as exc:
            log.warning("bus event that does not fit the contract ignored", extra={"topic": suffix, "reason": str(exc)})
            return
        if event is not None:
            self.events.put_nowait((event, payload))

    async def run(self, status: StatusSink) -> None:
        cfg = self.config
        tg = cfg.channels.telegram
        for path in (self.dir, self.spool, self.voice_dir):
            path.mkdir(parents=True, exist_ok=True)
        self.outbox = NotificationOutbox(self.dir / "outbox.db")
        personas = {pid: p.display_name for pid, p in cfg.personas.items()}
        for bot_id, bot_cfg in tg.bots.items():
            token = self._tokens.get(bot_id)
            if not token:
                log.error("telegram bot has no token", extra={"bot": bot_id, "token_env": bot_cfg.token_env})
                continue
            self.bots[bot_id] = TelegramBot(
                bot_id, bot_cfg, tg, token, self.bus, self.outbox, self.spool, cfg.call.persona, personas,
            )
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.bus.run(), name="telegram-bus")
                tasks.create_task(self._notify_loop(), name="telegram-notify")
                for bot_id, bot in self.bots.items():
                    tasks.create_task(bot.run(), name=f"telegram-{bot_id}")
                tasks.create_task(self._report(status), name="telegram-status")
        finally:
            self.outbox.close()

    async def _report(self, status: StatusSink) -> None:
        last = None
        while True:
            problems = [f"{b}: {bot.detail}" for b, bot in self.bots.items() if bot.state != "ready"]
            if not self.bus.connected.is_set():
                problems.insert(0, "bus not connected")
            if self.missing_tokens:
                problems.append("no token in " + ", ".join(self.missing_tokens))
            if not self.bots and not self.missing_tokens:
                problems.append("no bots configured")
            line = "; ".join(problems) if problems else f"{len(self.bots)} bot(s) ready"
            if line != last:
                (status.degraded if problems else status.ready)(line)
                last = line
            await asyncio.sleep(0.5)

    # -- notifications --------------------------------------------------------------------
    async def _notify_loop(self) -> None:
        while True:
            event, payload = await self.events.get()
            try:
                key, notices = await self._notices(event, payload)
            except Exception:  # one malformed event must not stop the others
                log.exception("could not build a notification", extra={"event": type(event).__name__})
                continue
            self.enqueue(key, notices)

    def enqueue(self, key: str, notices: list[Notice]) -> int:
        """Queue ``notices`` for every notified user of every bot; returns how many were new."""
        assert self.outbox is not None
        added = 0
        for bot_id, bot_cfg in self.config.channels.telegram.bots.items():
            for chat_id in bot_cfg.notify_users:
                for notice in notices:
                    if self.outbox.enqueue(bot_id, chat_id, notice.kind, notice.payload, f"{key}:{notice.part}:{chat_id}"):
                        added += 1
            bot = self.bots.get(bot_id)
            if bot is not None:
                bot.sender.notify()
        log.info("notification queued", extra={"key": key, "items": added})
        return added

    async def _notices(self, event: OwnerEvent, payload: dict[str, Any]) -> tuple[str, list[Notice]]:
        """The outbox key (the same event twice adds nothing) and the notices built from the payload."""
        if isinstance(event, SmsReceivedEvent):
            digest = hashlib.sha256(json.dumps([event.sender, event.ts, event.text]).encode()).hexdigest()
            return f"sms:{digest[:16]}", sms_notices(payload)
        if isinstance(event, CallbackRequestEvent):
            return f"callback:{event.id}", callback_request_notices(payload)
        call_id = event.call_id
        if isinstance(event, MissedEvent):
            return f"missed:{call_id}", missed_call_notices(payload)
        persona = self.config.personas.get(str(event.persona))
        persona_name = persona.display_name if persona is not None else "Secretary"
        utterances: list[dict[str, Any]] = []
        voice_path: str | None = None
        voice_s: float | None = None
        record_dir = self._record_dir(call_id)
        if record_dir is not None and record_dir.is_dir():
            utterances = await asyncio.to_thread(_read_utterances, record_dir / "transcript.json")
            voice = await asyncio.to_thread(self._voice_note, call_id, record_dir / "caller.wav")
            if voice is not None:
                voice_path, voice_s = str(voice[0]), voice[1]
        return f"call:{call_id}", call_notices(payload, utterances, persona_name, voice_path, voice_s)

    def _record_dir(self, call_id: str) -> Path | None:
        if not call_id or not set(call_id) <= _SAFE_ID or call_id.startswith("."):
            return None
        return self.data_dir / "calls" / call_id

    def _voice_note(self, call_id: str, wav: Path) -> tuple[Path, float] | None:
        """The caller's track as OGG/Opus, kept beside the outbox (a redelivered event converts it again)."""
        target = self.voice_dir / f"{call_id}.ogg"
        try:
            data, seconds = wav_to_voice_note(wav)
        except (OSError, VoiceNoteError) as exc:
            log.warning("no voice note for the call", extra={"call_id": call_id, "error": str(exc)})
            return None
        if seconds < 0.5:
            return None
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        return target, seconds


OwnerEvent = MissedEvent | EndedEvent | SmsReceivedEvent | CallbackRequestEvent


def _owner_event(suffix: str, payload: dict[str, Any]) -> OwnerEvent | None:
    """The payload decoded if the owner hears about it (missed calls, incoming calls' endings, SMS, call-backs)."""
    kind = payload.get("type")
    if suffix == CALL_EVENT and kind in (MissedEvent.type, EndedEvent.type):
        call = decode_call_event(payload)
        if isinstance(call, MissedEvent) or (isinstance(call, EndedEvent) and call.direction in (None, "incoming")):
            return call
    elif suffix == SMS_EVENT and kind == SmsReceivedEvent.type:
        return SmsReceivedEvent.decode(payload)
    elif suffix == CALLBACK_EVENT and kind == CallbackRequestEvent.type:
        return CallbackRequestEvent.decode(payload)
    return None


def _read_utterances(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    items = data.get("utterances", []) if isinstance(data, dict) else []
    return [u for u in items if isinstance(u, dict)]
