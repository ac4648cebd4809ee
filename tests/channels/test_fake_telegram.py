"""The real python-telegram-bot client against the FakeTelegram Bot API stand-in."""

from __future__ import annotations

import asyncio
import datetime as dtm
from collections.abc import AsyncIterator

import aiohttp
import pytest
from telegram import Bot, ForceReply, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

from tests.support.telegram_bot_api import FakeTelegram

TOKEN = "123456789:AAHfakeTokenForTests_abcdefghijklmno"
OWNER = 4242
OGG = b"OggS\x00\x02" + bytes(range(256)) * 8


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        server.add_bot(TOKEN, "secretary_test_bot")
        yield server


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=tg.base_url, base_file_url=tg.base_file_url) as client:
        yield client


def _seconds(value: int | dtm.timedelta) -> float:
    """PTB 22 exposes durations as int or timedelta depending on PTB_TIMEDELTA."""
    return value.total_seconds() if isinstance(value, dtm.timedelta) else value


def _keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("Call back", callback_data="call:1"),
                                  InlineKeyboardButton("Ignore", callback_data="ignore:1")]])


async def test_get_me(tg: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == 123456789 and me.is_bot and me.username == "secretary_test_bot"
    assert tg.calls(TOKEN)[:2] == ["getMe", "getMe"]  # one from Bot.initialize()


async def test_raw_error_shapes(tg: FakeTelegram) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{tg.base_url}1:wrong/getMe") as resp:
            assert resp.status == 401
            assert await resp.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        async with http.post(f"{tg.base_url}{TOKEN}/noSuchMethod") as resp:
            assert resp.status == 404
            assert await resp.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        async with http.get(f"{tg.base_url}{TOKEN}/GETME") as resp:  # methods are case-insensitive
            assert (await resp.json())["result"]["id"] == 123456789


async def test_send_message_with_inline_keyboard(tg: FakeTelegram, bot: Bot) -> None:
    first = await bot.send_message(OWNER, "<b>Missed call</b> from +4915112345678",
                                   parse_mode="HTML", reply_markup=_keyboard())
    assert first.message_id == 1 and first.chat.id == OWNER and first.chat.type == "private"
    assert first.from_user.id == bot.id and first.text == "Missed call from +4915112345678"
    assert first.reply_markup == _keyboard()
    second = await bot.send_message(OWNER, "Reply with a note", reply_markup=ForceReply(),
                                    reply_to_message_id=first.message_id)
    assert second.message_id == 2 and second.reply_to_message.message_id == 1
    assert second.reply_markup is None  # Telegram echoes inline keyboards only

    first_rec, second_rec = tg.sent(TOKEN, chat_id=OWNER)
    assert first_rec["method"] == "sendMessage" and first_rec["parse_mode"] == "HTML"
    assert first_rec["text"] == "<b>Missed call</b> from +4915112345678"
    assert first_rec["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "call:1"
    assert second_rec["reply_markup"] == {"force_reply": True}
    assert second_rec["reply_to_message_id"] == 1
    assert tg.sent(TOKEN, chat_id=999) == []


async def test_text_validation(tg: FakeTelegram, bot: Bot) -> None:
    with pytest.raises(BadRequest, match="(?i)message is too long"):
        await bot.send_message(OWNER, "x" * 4097)
    await bot.send_message(OWNER, "x" * 4096)
    with pytest.raises(BadRequest, match="(?i)can't parse entities"):
        await bot.send_message(OWNER, "<b>unclosed <i>tags</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="(?i)can't parse entities"):
        await bot.send_message(OWNER, "1 < 2", parse_mode="HTML")
    with pytest.raises(BadRequest, match="(?i)Character '.' is reserved"):
        await bot.send_message(OWNER, "Done.", parse_mode="MarkdownV2")
    await bot.send_message(OWNER, "*Done*\\. [link](https://x.example/a-b)", parse_mode="MarkdownV2")
    assert len(tg.sent(TOKEN)) == 2
    assert tg.calls(TOKEN).count("sendMessage") == 6


async def test_edit_message_text(tg: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(OWNER, "Transcribing…", reply_markup=_keyboard())
    edited = await bot.edit_message_text("Caller says: hello", chat_id=OWNER,
                                         message_id=sent.message_id, reply_markup=_keyboard())
    assert edited.message_id == sent.message_id and edited.text == "Caller says: hello"
    assert edited.edit_date is not None and edited.reply_markup == _keyboard()
    with pytest.raises(BadRequest, match="(?i)message is not modified"):
        await bot.edit_message_text("Caller says: hello", chat_id=OWNER,
                                    message_id=sent.message_id, reply_markup=_keyboard())
    # Same text without the keyboard is a modification: the keyboard goes away.
    stripped = await bot.edit_message_text("Caller says: hello", chat_id=OWNER, message_id=sent.message_id)
    assert stripped.reply_markup is None
    with pytest.raises(BadRequest, match="(?i)message to edit not found"):
        await bot.edit_message_text("x", chat_id=OWNER, message_id=99)
    assert [r["method"] for r in tg.sent(TOKEN)] == ["sendMessage", "editMessageText", "editMessageText"]
    assert tg.message(TOKEN, OWNER, sent.message_id)["text"] == "Caller says: hello"
    assert await bot.delete_message(OWNER, sent.message_id) is True
    assert tg.message(TOKEN, OWNER, sent.message_id) is None


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # int vs timedelta
async def test_send_voice_then_download(tg: FakeTelegram, bot: Bot) -> None:
    await bot.send_chat_action(OWNER, "record_voice")
    message = await bot.send_voice(OWNER, OGG, duration=2, caption="Voicemail")
    assert message.voice.mime_type == "audio/ogg" and _seconds(message.voice.duration) == 2
    assert message.voice.file_size == len(OGG) and message.caption == "Voicemail"
    record = tg.sent(TOKEN)[-1]
    assert record["method"] == "sendVoice" and record["voice"] == OGG and record["text"] == "Voicemail"

    file = await bot.get_file(message.voice.file_id)
    assert file.file_path.startswith(f"{tg.base_file_url}{TOKEN}/voice/")
    assert bytes(await file.download_as_bytearray()) == OGG
    again = await bot.send_voice(OWNER, message.voice.file_id)  # re-send by file_id
    assert again.voice.file_id == message.voice.file_id and tg.sent(TOKEN)[-1]["voice"] == OGG


async def test_get_updates_long_polling(tg: FakeTelegram, bot: Bot) -> None:
    assert await bot.get_updates(timeout=0) == ()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    assert not poll.done()
    tg.push_message(TOKEN, OWNER, "/start", first_name="Ada")
    (update,) = await asyncio.wait_for(poll, 1)
    assert update.message.text == "/start" and update.message.from_user.first_name == "Ada"
    assert update.message.chat.id == OWNER and update.message.entities[0].type == "bot_command"

    sent = await bot.send_message(OWNER, "Call from Bob", reply_markup=_keyboard())
    tg.push_callback(TOKEN, OWNER, "call:1", sent.message_id)
    tg.push_voice(TOKEN, OWNER, OGG, duration=3)
    # Not confirmed yet: the first update comes again; then the offset drops it.
    assert [u.update_id for u in await bot.get_updates(limit=1)] == [update.update_id]
    callback, voice = await bot.get_updates(offset=update.update_id + 1, timeout=1,
                                            allowed_updates=["message", "callback_query"])
    assert callback.callback_query.data == "call:1"
    assert callback.callback_query.message.message_id == sent.message_id
    assert await bot.answer_callback_query(callback.callback_query.id, text="Calling back") is True
    assert tg.answered_callbacks[0]["text"] == "Calling back"
    with pytest.raises(BadRequest, match="(?i)query ID is invalid"):
        await bot.answer_callback_query(callback.callback_query.id)
    file = await bot.get_file(voice.message.voice.file_id)
    assert bytes(await file.download_as_bytearray()) == OGG
    assert await bot.get_updates(offset=voice.update_id + 1, timeout=0) == ()


async def test_commands(bot: Bot) -> None:
    assert await bot.set_my_commands([("status", "Show status"), ("mute", "Mute calls")]) is True
    assert [c.command for c in await bot.get_my_commands()] == ["status", "mute"]
    with pytest.raises(BadRequest, match="(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([("Bad Command", "nope")])
    assert await bot.delete_webhook() is True


async def test_wrong_token_is_invalid_token(tg: FakeTelegram) -> None:
    client = Bot("1:definitely-wrong", base_url=tg.base_url, base_file_url=tg.base_file_url)
    with pytest.raises(InvalidToken):
        await client.get_me()
    await client.shutdown()


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # int vs timedelta
async def test_flood_control_and_gateway_errors(tg: FakeTelegram, bot: Bot) -> None:
    tg.fail_next("sendMessage")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(OWNER, "hi")
    assert _seconds(caught.value.retry_after) == 3
    tg.fail_next("sendMessage", status=502)
    with pytest.raises(NetworkError, match="(?i)Bad Gateway"):
        await bot.send_message(OWNER, "hi")
    await bot.send_message(OWNER, "hi")
    assert len(tg.sent(TOKEN)) == 1
    assert tg.calls(TOKEN)[-3:] == ["sendMessage"] * 3


async def test_outages(tg: FakeTelegram, bot: Bot) -> None:
    with tg.outage("5xx"):
        with pytest.raises(NetworkError, match="(?i)Bad Gateway"):
            await bot.send_message(OWNER, "hi")
    tg.set_outage("reset")
    with pytest.raises(NetworkError):
        await bot.send_message(OWNER, "hi")
    tg.end_outage()
    with tg.outage("hang"):
        with pytest.raises(TimedOut):
            await bot.send_message(OWNER, "hi", read_timeout=0.3)
    assert tg.sent(TOKEN) == []
    message = await bot.send_message(OWNER, "after the outage")
    assert message.message_id == 1 and len(tg.sent(TOKEN)) == 1


async def test_application_polling_receives_message(tg: FakeTelegram) -> None:
    received: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    delivered: list[dict] = []
    tg.delivered_hook = delivered.append

    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"echo: {update.effective_message.text}")
        received.set_result(update.effective_message.text or "")

    app = ApplicationBuilder().token(TOKEN).base_url(tg.base_url).base_file_url(tg.base_file_url).build()
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, on_text))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.05, timeout=1)
        tg.push_message(TOKEN, OWNER, "hello bot")
        assert await asyncio.wait_for(received, 5) == "hello bot"
        await app.updater.stop()
        await app.stop()
    assert [d["text"] for d in delivered] == ["echo: hello bot"]
    assert delivered[0]["chat_id"] == OWNER
    assert "deleteWebhook" in tg.calls(TOKEN) and "getUpdates" in tg.calls(TOKEN)
