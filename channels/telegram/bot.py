"""One Telegram bot: the owner's chat with the secretary, commands, buttons, and its notification sender.

Only the whitelisted users are served; anyone else gets one polite refusal
and is logged (their text never reaches a language model). Text messages are
answered by the bot's persona through ``cmd/chat``, the answer streamed into
the message by edits (at most one edit a second). Voice messages are
transcribed and answered with a voice message in the persona's voice.
Buttons on notifications call back (``cmd/dial``), reply by SMS (asks for
the text, then ``cmd/sms/send``), block the number (``cmd/block``) or show the
transcript (``cmd/calls/get``). Notifications themselves come from the
durable outbox, sent by this bot's ``OutboxSender`` once the bot is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from telegram import ForceReply, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from channels.bus_client import BusUnavailable, ChannelBus, CommandFailed
from channels.bus_contract.verbs import BLOCK, CALLS_GET, CALLS_LIST, CHAT, CHAT_AUDIO_RATE, DIAL, SMS_SEND
from channels.telegram.chat_sessions import ChatSession, ChatSessions
from channels.telegram.message_text import TELEGRAM_TEXT_LIMIT, split_text
from channels.telegram.notifications import Buttons, parse_callback, transcript_notices
from channels.telegram.outbox import NotificationOutbox, OutboxItem, OutboxSender
from channels.telegram.status_text import calls_text, status_text
from channels.telegram.voice_notes import VoiceNoteError, voice_note_to_pcm, wav_to_voice_note
from config.channels_schema import TelegramBotConfig, TelegramConfig
from drivers.audio import StreamingWavWriter
from drivers.audio.pcm import float_to_int16

log = logging.getLogger("secretary.channels.telegram")

CHAT_TIMEOUT_S = 200.0
EDIT_INTERVAL_S = 1.0
MAX_VOICE_BYTES = 8 * 1024 * 1024  # Opus voice at ~32 kbit/s: half an hour; anything bigger is not a voice note
REFUSAL = "Sorry, this is a private assistant and it only talks with its owner."
HELP = (
    "I am {name}, the secretary of this phone number.\n\n"
    "Write or send a voice message and I will answer.\n"
    "/status - the box: modem, signal, engines\n"
    "/calls - the last calls\n"
    "/persona [id] - who answers you here\n"
    "/help - this text\n\n"
    "After every call you get its summary, transcript and the caller's audio, with buttons to call back, "
    "reply by SMS or block the number."
)
NO_LLM = ("I cannot chat yet: the box has no conversational language model configured. "
          "Calls are still answered, and their messages come here.")
COMMANDS = [("status", "modem, signal and engines"), ("calls", "the last calls"),
            ("persona", "who answers you here"), ("help", "what I can do")]


def keyboard(buttons: Buttons | list[list[list[str]]] | None) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    rows = [[InlineKeyboardButton(str(label), callback_data=str(data)) for label, data in row] for row in buttons]
    rows = [row for row in rows if row]
    return InlineKeyboardMarkup(rows) if rows else None


class TelegramBot:
    def __init__(
        self,
        bot_id: str,
        config: TelegramBotConfig,
        telegram: TelegramConfig,
        token: str,
        bus: ChannelBus,
        outbox: NotificationOutbox,
        spool: Path,
        persona: str,
        personas: dict[str, str],  # id -> display name
    ) -> None:
        self.bot_id = bot_id
        self.config = config
        self.telegram = telegram
        self.bus = bus
        self.outbox = outbox
        self.spool = spool
        self.persona = persona
        self.personas = personas
        self.sessions = ChatSessions(config.history_turns)
        self.refused: set[int] = set()
        self.state = "starting"
        self.detail = ""
        timeout = telegram.request_timeout_s
        self.app: Application[Any, Any, Any, Any, Any, Any] = (
            ApplicationBuilder()
            .token(token)
            .base_url(f"{telegram.api_url}/bot")
            .base_file_url(f"{telegram.api_url}/file/bot")
            .connect_timeout(timeout).read_timeout(timeout).write_timeout(timeout).pool_timeout(timeout)
            .get_updates_read_timeout(telegram.poll_timeout_s + 10)
            .concurrent_updates(True)
            .build()
        )
        self.sender = OutboxSender(
            outbox, bot_id, self._deliver,
            backoff_initial_s=telegram.retry_initial_s, backoff_max_s=telegram.retry_max_s,
        )
        self._install_handlers()

    # -- lifecycle ------------------------------------------------------------------------
    async def run(self) -> None:
        """Connect (retrying while Telegram is unreachable), poll for updates, send notifications."""
        delay = self.telegram.retry_initial_s
        while True:
            try:
                await self.app.initialize()
                break
            except InvalidToken:
                self._set("failed", "Telegram refused the token: check " + self.config.token_env)
                log.error("telegram token refused", extra={"bot": self.bot_id, "token_env": self.config.token_env})
                await asyncio.Event().wait()  # the other bots go on; a reload with a new token restarts us
            except (NetworkError, TelegramError) as exc:
                self._set("degraded", f"Telegram unreachable ({exc}); retry in {delay:.0f} s")
                log.warning("telegram unreachable", extra={"bot": self.bot_id, "error": str(exc), "retry_s": delay})
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.telegram.retry_max_s)
        try:
            await self.app.start()
            assert self.app.updater is not None
            await self.app.updater.start_polling(
                timeout=self.telegram.poll_timeout_s,
                allowed_updates=["message", "callback_query"],
                error_callback=self._polling_error,
            )
            with contextlib.suppress(TelegramError):
                await self.app.bot.set_my_commands(COMMANDS)
            me = self.app.bot.username
            self._set("ready", f"@{me} polling, {len(self.config.users)} user(s)")
            log.info("telegram bot started", extra={"bot": self.bot_id, "username": me})
            await self.sender.run()
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        with contextlib.suppress(Exception):
            if self.app.updater is not None and self.app.updater.running:
                await self.app.updater.stop()
        with contextlib.suppress(Exception):
            if self.app.running:
                await self.app.stop()
        with contextlib.suppress(Exception):
            await self.app.shutdown()

    def _set(self, state: str, detail: str) -> None:
        self.state, self.detail = state, detail

    def _polling_error(self, error: TelegramError) -> None:
        log.warning("telegram polling error", extra={"bot": self.bot_id, "error": str(error)})

    # -- notifications --------------------------------------------------------------------
    async def _deliver(self, item: OutboxItem) -> int | None:
        p = item.payload
        bot = self.app.bot
        if item.kind == "voice":
            try:
                data = await asyncio.to_thread(Path(p["path"]).read_bytes)
            except OSError:
                message = await bot.send_message(item.chat_id, "(the caller's audio is no longer available)")
                return message.message_id
            duration = p.get("duration")
            message = await bot.send_voice(
                item.chat_id, voice=data, caption=p.get("caption"),
                duration=int(round(duration)) if duration else None,
            )
            return message.message_id
        message = await bot.send_message(
            item.chat_id, p["text"], parse_mode=p.get("parse_mode"), reply_markup=keyboard(p.get("buttons")),
        )
        return message.message_id

    # -- updates --------------------------------------------------------------------------
    def _install_handlers(self) -> None:
        app = self.app
        app.add_handler(TypeHandler(Update, self._gate), group=-1)
        app.add_handler(CommandHandler(["start", "help"], self._help))
        app.add_handler(CommandHandler("status", self._status))
        app.add_handler(CommandHandler("calls", self._calls))
        app.add_handler(CommandHandler("persona", self._persona))
        app.add_handler(CallbackQueryHandler(self._button))
        app.add_handler(MessageHandler(filters.VOICE | filters.AUDIO, self._voice))
        app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, self._text))
        app.add_error_handler(self._error)

    async def _gate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user = update.effective_user
        if user is not None and user.id in self.config.users:
            return
        who = user.id if user is not None else None
        log.warning("telegram message from a user not on the whitelist",
                    extra={"bot": self.bot_id, "user_id": who, "username": getattr(user, "username", None)})
        if user is not None and user.id not in self.refused and update.effective_chat is not None:
            self.refused.add(user.id)
            with contextlib.suppress(TelegramError):
                await context.bot.send_message(update.effective_chat.id, REFUSAL)
        if update.callback_query is not None:
            with contextlib.suppress(TelegramError):
                await update.callback_query.answer()
        raise ApplicationHandlerStop

    async def _error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram handler failed", extra={"bot": self.bot_id, "error": repr(context.error)})

    def _session(self, update: Update) -> ChatSession:
        assert update.effective_user is not None
        return self.sessions.of(update.effective_user.id)

    def _persona_of(self, session: ChatSession) -> str:
        return session.persona or self.config.persona or self.persona

    async def _help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        persona = self._persona_of(self._session(update))
        await update.effective_message.reply_text(HELP.format(name=self.personas.get(persona, persona)))

    async def _status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(status_text(self.bus.state, self.bus.connected.is_set()))

    async def _calls(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        try:
            result = await self.bus.request(CALLS_LIST, {"limit": self.telegram.calls_listed})
        except (CommandFailed, BusUnavailable, TimeoutError) as exc:
            await update.effective_message.reply_text(f"The call list is not available: {exc}")
            return
        for part in split_text(calls_text(result.get("calls", [])), TELEGRAM_TEXT_LIMIT):
            await update.effective_message.reply_text(part)

    async def _persona(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        session = self._session(update)
        wanted = (context.args or [None])[0]
        if wanted is None:
            current = self._persona_of(session)
            others = ", ".join(f"{pid} ({name})" for pid, name in sorted(self.personas.items()))
            await update.effective_message.reply_text(
                f"You are talking with {self.personas.get(current, current)} ({current}).\n"
                f"Personas: {others}\nSwitch with /persona <id>."
            )
            return
        if wanted not in self.personas:
            await update.effective_message.reply_text(f"There is no persona {wanted!r}; try one of: {', '.join(sorted(self.personas))}")
            return
        session.persona = wanted
        session.clear()
        await update.effective_message.reply_text(f"{self.personas[wanted]} answers you from now on.")

    async def _button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        parsed = parse_callback(query.data or "")
        if parsed is None:
            await query.answer("This button is no longer valid.")
            return
        action, value = parsed
        chat_id = query.message.chat.id if query.message is not None else query.from_user.id
        if action == "sms":
            self._session(update).sms_to = value
            await query.answer()
            await context.bot.send_message(
                chat_id, f"Write the SMS for {value}:", reply_markup=ForceReply(input_field_placeholder="SMS text")
            )
            return
        try:
            if action == "dial":
                await self.bus.request(DIAL, {"number": value})
                await query.answer(f"Calling {value}…")
            elif action == "block":
                result = await self.bus.request(BLOCK, {"number": value, "note": f"telegram:{self.bot_id}"})
                await query.answer(f"{result['number']} is blocked." if result.get("added") else f"{value} was already blocked.")
            elif action == "tx":
                call = await self.bus.request(CALLS_GET, {"call_id": value})
                await query.answer()
                persona = self.personas.get(str(call.get("persona")), str(call.get("persona")))
                notices = transcript_notices(call.get("transcript", []), persona, value)
                if not notices:
                    await context.bot.send_message(chat_id, "This call has no transcript.")
                for notice in notices:
                    await context.bot.send_message(chat_id, notice.payload["text"], parse_mode=ParseMode.HTML)
        except CommandFailed as exc:
            await query.answer(f"Not done: {exc.message}"[:200], show_alert=True)
        except (BusUnavailable, TimeoutError):
            await query.answer("The box is not reachable right now; try again.", show_alert=True)

    async def _text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None and message.text is not None
        session = self._session(update)
        if session.sms_to is not None:
            number, session.sms_to = session.sms_to, None
            try:
                await self.bus.request(SMS_SEND, {"number": number, "text": message.text}, timeout_s=60)
            except CommandFailed as exc:
                await message.reply_text(f"The SMS to {number} was not sent: {exc.message}")
            except (BusUnavailable, TimeoutError):
                await message.reply_text(f"The SMS to {number} was not sent: the box is not reachable.")
            else:
                await message.reply_text(f"SMS sent to {number}.")
            return
        await self._chat(update, session, text=message.text)

    async def _voice(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        voice = message.voice or message.audio
        assert voice is not None
        too_long = f"That is a long one: I listen to voice messages up to {self.telegram.voice_note_max_s:g} s."
        if (voice.file_size or 0) > MAX_VOICE_BYTES:
            await message.reply_text(too_long)
            return
        file = await voice.get_file()
        data = bytes(await file.download_as_bytearray())
        try:
            samples = await asyncio.to_thread(voice_note_to_pcm, data, CHAT_AUDIO_RATE)
        except VoiceNoteError as exc:
            await message.reply_text(f"I could not play that recording: {exc}")
            return
        if len(samples) > self.telegram.voice_note_max_s * CHAT_AUDIO_RATE:
            await message.reply_text(too_long)
            return
        path = self.spool / f"tg-{uuid.uuid4().hex}.wav"
        await asyncio.to_thread(_write_wav, path, samples, CHAT_AUDIO_RATE)
        try:
            await self._chat(update, self._session(update), audio_file=str(path), voice_reply=self.config.voice_replies)
        finally:
            path.unlink(missing_ok=True)

    async def _chat(
        self, update: Update, session: ChatSession, *, text: str | None = None, audio_file: str | None = None,
        voice_reply: bool = False,
    ) -> None:
        message = update.effective_message
        assert message is not None
        stream = StreamedReply(message)
        persona = self._persona_of(session)
        args: dict[str, Any] = {
            "persona": persona, "history": session.messages(), "text": text, "audio_file": audio_file,
            "voice_reply": voice_reply, "session": f"telegram:{self.bot_id}:{message.chat.id}",
        }
        if self.config.llm:
            args["llm"] = self.config.llm
        if self.config.tts:
            args["tts"] = self.config.tts
        with contextlib.suppress(TelegramError):
            await message.get_bot().send_chat_action(message.chat.id, ChatAction.TYPING)
        async with stream:
            try:
                result = await self.bus.request(CHAT, args, timeout_s=CHAT_TIMEOUT_S, on_partial=stream.partial)
            except CommandFailed as exc:
                await stream.fail(NO_LLM if exc.code == "no_llm" else f"Sorry, I could not answer: {exc.message}")
                return
            except (BusUnavailable, TimeoutError):
                await stream.fail("The box is not reachable right now; try again in a minute.")
                return
            answer = str(result.get("text") or "")
            await stream.finish(answer)
        session.add_exchange(str(result.get("heard") or text or ""), answer)
        reply_audio = result.get("audio_file")
        if reply_audio:
            path = Path(reply_audio)
            try:
                ogg, seconds = await asyncio.to_thread(wav_to_voice_note, path)
                await message.reply_voice(voice=ogg, duration=int(round(seconds)))
            except (VoiceNoteError, OSError) as exc:
                log.warning("spoken answer not sent", extra={"bot": self.bot_id, "error": str(exc)})
            finally:
                path.unlink(missing_ok=True)


class StreamedReply:
    """An answer that grows by edits as the model writes it (at most one edit per second)."""

    def __init__(self, replying_to: Message) -> None:
        self.replying_to = replying_to
        self.heard: str | None = None
        self.parts: list[str] = []
        self.sent: Message | None = None
        self.shown = ""
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> StreamedReply:
        self._task = asyncio.create_task(self._edits(), name="telegram-streamed-reply")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def partial(self, partial: Any) -> None:
        if not isinstance(partial, dict):
            return
        if isinstance(partial.get("heard"), str):
            self.heard = partial["heard"]
        if isinstance(partial.get("delta"), str):
            self.parts.append(partial["delta"])
        self._changed.set()

    def _text(self, answer: str, typing: bool) -> str:
        head = f"🎤 «{self.heard}»\n\n" if self.heard else ""
        return head + answer + (" …" if typing else "")

    async def _edits(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            await self._show(self._text("".join(self.parts), typing=True)[:TELEGRAM_TEXT_LIMIT])
            await asyncio.sleep(EDIT_INTERVAL_S)

    async def _show(self, text: str) -> None:
        if not text.strip() or text == self.shown:
            return
        try:
            if self.sent is None:
                self.sent = await self.replying_to.reply_text(text)
            else:
                await self.sent.edit_text(text)
            self.shown = text
        except BadRequest as exc:
            log.debug("streamed edit refused", extra={"error": str(exc)})
        except TelegramError as exc:
            log.warning("streamed edit failed", extra={"error": str(exc)})

    async def _stop_edits(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def finish(self, answer: str) -> None:
        await self._stop_edits()
        parts = split_text(self._text(answer or "…", typing=False), TELEGRAM_TEXT_LIMIT)
        await self._show(parts[0])
        for part in parts[1:]:
            await self.replying_to.reply_text(part)

    async def fail(self, text: str) -> None:
        await self._stop_edits()
        if self.sent is None:
            await self.replying_to.reply_text(text)
        else:
            await self._show(self._text("".join(self.parts), typing=False) + "\n\n" + text)


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    writer = StreamingWavWriter(path, rate)
    try:
        writer.write(float_to_int16(samples))
    finally:
        writer.close()
