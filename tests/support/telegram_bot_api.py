"""A local stand-in for Telegram's Bot API server, for tests that drive the real PTB client.

Point python-telegram-bot at it with ``Bot(token, base_url=tg.base_url,
base_file_url=tg.base_file_url)``.  Requests and responses follow
https://core.telegram.org/bots/api: ``POST {base_url}{token}/{method}`` with query, form,
multipart or JSON parameters; replies ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": N, "description": "..."}``.  Helpers are synchronous and must
be called from the event loop thread the server runs in.

Deliberately Telegram-like details: message ids count per chat (incoming and outgoing
share the sequence), returned messages echo inline keyboards only, HTML text comes back
with tags stripped, method names are case-insensitive, ``/command`` texts carry a
``bot_command`` entity (PTB's CommandHandler needs it), bot ids are the token's prefix.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

JSONDict = dict[str, Any]
OUTAGE_KINDS = ("5xx", "reset", "hang")
MAX_TEXT = 4096
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
_DESCRIPTIONS = {400: "Bad Request", 403: "Forbidden: bot was blocked by the user",
                 409: "Conflict", 500: "Internal Server Error", 502: "Bad Gateway",
                 503: "Service Unavailable", 504: "Gateway Timeout"}
_CHAT_ACTIONS = {"typing", "upload_photo", "record_video", "upload_video", "record_voice",
                 "upload_voice", "upload_document", "choose_sticker", "find_location",
                 "record_video_note", "upload_video_note"}
_HTML_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
              "a", "code", "pre", "blockquote", "tg-emoji"}
_TAG = re.compile(r"<(/?)([a-zA-Z][\w-]*)?[^<>]*>?")
_COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,32}(@\w+)?")


class ApiError(Exception):
    """A 400 ``{"ok": false}`` answer, raised inside method handlers."""


@dataclass
class _Bot:
    token: str
    id: int
    username: str
    updates: list[JSONDict] = field(default_factory=list)
    update_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    allowed_updates: list[str] = field(default_factory=list)
    wakeups: set[asyncio.Event] = field(default_factory=set)
    commands: dict[str, list[JSONDict]] = field(default_factory=dict)
    messages: dict[tuple[int, int], JSONDict] = field(default_factory=dict)
    sources: dict[tuple[int, int], tuple[str, str | None]] = field(default_factory=dict)
    last_message_id: dict[int, int] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes, JSONDict]] = field(default_factory=dict)  # id -> path, data, meta
    open_callbacks: set[str] = field(default_factory=set)

    @property
    def user(self) -> JSONDict:
        return {"id": self.id, "is_bot": True, "first_name": self.username, "username": self.username}


def _error(code: int, description: str, parameters: JSONDict | None = None) -> web.Response:
    body: JSONDict = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)


def _json(value: Any) -> Any:
    """A parameter that PTB JSON-encodes in forms (markup, lists) but a JSON body sends raw."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ApiError(f"Bad Request: can't parse JSON: {value[:40]!r}") from exc
    return value


def _int(params: JSONDict, name: str, default: int | None = None) -> int:
    value = params.get(name, default)
    if value is None or value == "":
        raise ApiError(f"Bad Request: {name} is empty")
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ApiError("Bad Request: chat not found" if name == "chat_id"
                       else f"Bad Request: invalid {name} specified") from None


def _check_entities(text: str, parse_mode: str | None) -> str:
    """Validate ``text`` like Telegram's entity parser (simplified); returns the plain text."""
    if parse_mode is None or parse_mode == "":
        return text
    mode = parse_mode.lower()
    if mode == "html":
        stack: list[str] = []
        for match in _TAG.finditer(text):
            closing, name = match.group(1), (match.group(2) or "").lower()
            at = len(text[: match.start()].encode())
            if name not in _HTML_TAGS or not match.group(0).endswith(">"):
                raise ApiError("Bad Request: can't parse entities: Unsupported start tag "
                               f'"{name}" at byte offset {at}')
            if not closing:
                stack.append(name)
            elif not stack or stack[-1] != name:
                expected = f'"</{stack[-1]}>"' if stack else "no end tag"
                raise ApiError("Bad Request: can't parse entities: Unmatched end tag at byte "
                               f'offset {at}, expected {expected}, found "</{name}>"')
            else:
                stack.pop()
        if stack:
            raise ApiError("Bad Request: can't parse entities: Can't find end tag "
                           f'corresponding to start tag "{stack[-1]}"')
        return html.unescape(_TAG.sub("", text))
    if mode == "markdownv2":
        outside_code = re.sub(r"```.*?```|`[^`]*`|\]\([^)]*\)", "", text, flags=re.S)
        if bad := re.search(r"(?<!\\)[.!\-=+#{}]", outside_code):
            raise ApiError(f"Bad Request: can't parse entities: Character '{bad.group()}' is "
                           "reserved and must be escaped with the preceding '\\'")
        return re.sub(r"\\(.)", r"\1", text)
    if mode == "markdown":
        return text
    raise ApiError(f"Bad Request: unsupported parse_mode {parse_mode!r}")


def _text(params: JSONDict) -> tuple[str, str | None, str]:
    """The ``text`` parameter checked like Telegram: (as sent, parse_mode, as displayed)."""
    text, parse_mode = str(params.get("text", "")), params.get("parse_mode") or None
    plain = _check_entities(text, parse_mode)
    if not plain.strip():
        raise ApiError("Bad Request: message text is empty")
    if len(plain.encode("utf-16-le")) // 2 > MAX_TEXT:  # Telegram counts UTF-16 code units
        raise ApiError("Bad Request: message is too long")
    return text, parse_mode, plain


class FakeTelegram:
    """Bot API stand-in on 127.0.0.1 (aiohttp, runs in the test's event loop)."""

    def __init__(self) -> None:
        self._bots: dict[str, _Bot] = {}
        self._users: dict[int, str] = {}
        self._calls: list[tuple[str, str]] = []
        self._sent: list[tuple[str, JSONDict]] = []
        self._faults: dict[str, list[tuple[int, int, str | None]]] = {}
        self._outage: str | None = None
        self._outage_over = asyncio.Event()
        self._outage_over.set()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._stopping = False
        self.answered_callbacks: list[JSONDict] = []
        self.delivered_hook: Callable[[JSONDict], None] | None = None
        self._methods: dict[str, Callable[[_Bot, JSONDict], Any]] = {
            "getMe": self._get_me, "getUpdates": self._get_updates,
            "deleteWebhook": self._delete_webhook, "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands, "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text, "sendVoice": self._send_voice,
            "sendChatAction": self._send_chat_action, "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query, "getFile": self._get_file,
        }
        self._by_lower = {name.lower(): name for name in self._methods}

    # ---------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    async def start(self) -> None:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None,
                                     shutdown_timeout=0.5, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        self._stopping = False

    async def stop(self) -> None:
        self._stopping = True
        self.end_outage()
        for bot in self._bots.values():
            for event in bot.wakeups:
                event.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- test-side API
    def add_bot(self, token: str, username: str) -> int:
        """Register a bot; its user id is the token's numeric prefix, as on Telegram."""
        prefix = token.split(":", 1)[0]
        bot_id = int(prefix) if prefix.isdigit() else 7_000_000_000 + len(self._bots) + 1
        self._bots[token] = _Bot(token=token, id=bot_id, username=username)
        return bot_id

    def push_message(self, token: str, user_id: int, text: str, first_name: str = "Owner") -> JSONDict:
        """Queue an Update: a private-chat text message from ``user_id`` (commands get entities)."""
        message = self._incoming(token, user_id, first_name, text=text)
        if command := _COMMAND.match(text):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": command.end()}]
        return self._push(token, {"message": message})

    def push_voice(self, token: str, user_id: int, ogg_bytes: bytes, duration: int,
                   first_name: str = "Owner") -> JSONDict:
        """Queue an Update with a voice message; its file is available via getFile/download."""
        voice = self._store_file(self._bots[token], ogg_bytes, duration)
        return self._push(token, {"message": self._incoming(token, user_id, first_name, voice=voice)})

    def push_callback(self, token: str, user_id: int, data: str, message_id: int) -> JSONDict:
        """Queue an Update: ``user_id`` pressed an inline button on a message the bot sent."""
        bot = self._bots[token]
        message = bot.messages.get((user_id, message_id))
        if message is None:
            raise ValueError(f"bot {bot.username} sent no message {message_id} to chat {user_id}")
        query_id = str(next(self._ids) * 1_000_003)
        bot.open_callbacks.add(query_id)
        return self._push(token, {"callback_query": {
            "id": query_id, "from": self._user(user_id), "message": message,
            "chat_instance": str(user_id * 31 + bot.id), "data": data}})

    def sent(self, token: str, chat_id: int | None = None) -> list[JSONDict]:
        """Successful sends/edits in order: method, chat_id, message_id, text, parse_mode,
        reply_markup (decoded), reply_to_message_id, voice (bytes, sendVoice), message."""
        return [r for t, r in self._sent if t == token and chat_id in (None, r["chat_id"])]

    def calls(self, token: str | None = None) -> list[str]:
        """Every method called (including failed ones and ones refused by an outage)."""
        return [method for t, method in self._calls if token in (None, t)]

    def message(self, token: str, chat_id: int, message_id: int) -> JSONDict | None:
        """The message as Telegram holds it now (``None`` if never sent or deleted)."""
        return self._bots[token].messages.get((chat_id, message_id))

    def fail_next(self, method: str, status: int = 429, retry_after: int = 3, times: int = 1,
                  description: str | None = None) -> None:
        """Answer the next ``times`` calls of ``method`` ("*" for any) with an error."""
        self._faults.setdefault(method.lower(), []).extend([(status, retry_after, description)] * times)

    def set_outage(self, kind: str) -> None:
        """"5xx": every request gets 502; "reset": connections dropped without a response;
        "hang": requests are never answered (until :meth:`end_outage`, then dropped)."""
        if kind not in OUTAGE_KINDS:
            raise ValueError(f"outage kind must be one of {OUTAGE_KINDS}")
        self._outage = kind
        self._outage_over.clear()

    def end_outage(self) -> None:
        self._outage = None
        self._outage_over.set()

    @contextmanager
    def outage(self, kind: str) -> Iterator[None]:
        self.set_outage(kind)
        try:
            yield
        finally:
            self.end_outage()

    # ---------------------------------------------------------------- plumbing
    def _user(self, user_id: int) -> JSONDict:
        return {"id": user_id, "is_bot": False, "first_name": self._users.get(user_id, "Owner"),
                "language_code": "en"}

    def _chat(self, chat_id: int) -> JSONDict:
        return {"id": chat_id, "type": "private", "first_name": self._users.get(chat_id, "Owner")}

    def _new_message(self, bot: _Bot, chat_id: int, sender: JSONDict, **content: Any) -> JSONDict:
        message_id = bot.last_message_id.get(chat_id, 0) + 1
        bot.last_message_id[chat_id] = message_id
        message = {"message_id": message_id, "from": sender, "chat": self._chat(chat_id),
                   "date": int(time.time()), **content}
        bot.messages[(chat_id, message_id)] = message
        return message

    def _incoming(self, token: str, user_id: int, first_name: str, **content: Any) -> JSONDict:
        self._users[user_id] = first_name
        return self._new_message(self._bots[token], user_id, self._user(user_id), **content)

    def _push(self, token: str, payload: JSONDict) -> JSONDict:
        bot = self._bots[token]
        update = {"update_id": next(bot.update_ids), **payload}
        bot.updates.append(update)
        for event in bot.wakeups:
            event.set()
        return update

    def _store_file(self, bot: _Bot, data: bytes, duration: int) -> JSONDict:
        n = next(self._ids)
        file_id = f"AwACAgIAAxkBAAI{n:08d}{bot.id:x}"
        voice = {"file_id": file_id, "file_unique_id": f"AgAD{n:06d}", "duration": duration,
                 "mime_type": "audio/ogg", "file_size": len(data)}
        bot.files[file_id] = (f"voice/file_{n}.oga", data, voice)
        return voice

    def _record(self, bot: _Bot, method: str, message: JSONDict, params: JSONDict,
                voice: bytes | None = None) -> None:
        record = {"method": method, "chat_id": message["chat"]["id"],
                  "message_id": message["message_id"], "text": params.get("text", params.get("caption")),
                  "parse_mode": params.get("parse_mode") or None,
                  "reply_markup": _json(params["reply_markup"]) if params.get("reply_markup") else None,
                  "reply_to_message_id": message.get("reply_to_message", {}).get("message_id"),
                  "voice": voice, "message": message}
        self._sent.append((bot.token, record))
        if self.delivered_hook is not None:
            self.delivered_hook(record)

    async def _params(self, request: web.Request) -> JSONDict:
        params: JSONDict = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.body_exists:
            for key, value in (await request.post()).items():
                params[key] = value.file.read() if isinstance(value, web.FileField) else value
        return params

    async def _outage_response(self, request: web.Request) -> web.StreamResponse:
        """While an outage is on: a 502, or (reset/hang) the connection dropped unanswered."""
        if self._outage == "5xx":
            return _error(502, "Bad Gateway")
        if self._outage == "hang":
            await self._outage_over.wait()
        if request.transport is not None:
            request.transport.abort()
        return web.Response()  # unwritable: aiohttp treats it as a client disconnect

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        token, name = request.match_info["token"], request.match_info["method"]
        method = self._by_lower.get(name.lower(), name)
        self._calls.append((token, method))
        if self._outage is not None:
            return await self._outage_response(request)
        bot = self._bots.get(token)
        if bot is None:
            return _error(401, "Unauthorized")
        if method not in self._methods:
            return _error(404, "Not Found")
        for key in (method.lower(), "*"):
            if self._faults.get(key):
                status, retry_after, description = self._faults[key].pop(0)
                if status == 429:
                    return _error(429, description or f"Too Many Requests: retry after {retry_after}",
                                  {"retry_after": retry_after})
                return _error(status, description or _DESCRIPTIONS.get(status, "Error"))
        try:
            result = self._methods[method](bot, await self._params(request))
            if asyncio.iscoroutine(result):
                result = await result
        except ApiError as exc:
            return _error(400, str(exc))
        body = {"ok": True, "result": result}
        if method == "deleteWebhook":
            body["description"] = "Webhook is already deleted"
        return web.json_response(body)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if self._outage is not None:
            return await self._outage_response(request)
        bot = self._bots.get(request.match_info["token"])
        path = request.match_info["path"]
        for file_path, data, _ in bot.files.values() if bot else ():
            if file_path == path:
                return web.Response(body=data, content_type="application/octet-stream")
        return _error(404, "Not Found")

    # ---------------------------------------------------------------- Bot API methods
    def _get_me(self, bot: _Bot, params: JSONDict) -> JSONDict:
        return {**bot.user, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False, "can_connect_to_business": False,
                "has_main_web_app": False}

    async def _get_updates(self, bot: _Bot, params: JSONDict) -> list[JSONDict]:
        offset, limit = _int(params, "offset", 0), max(1, min(100, _int(params, "limit", 100)))
        if params.get("allowed_updates") is not None:
            bot.allowed_updates = list(_json(params["allowed_updates"]))
        if offset < 0:
            bot.updates = bot.updates[offset:]
        elif offset:
            bot.updates = [u for u in bot.updates if u["update_id"] >= offset]
        deadline = time.monotonic() + float(params.get("timeout", 0) or 0)
        while True:
            allowed = bot.allowed_updates
            ready = [u for u in bot.updates if not allowed or any(k in u for k in allowed)][:limit]
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0 or self._stopping:
                return ready
            event = asyncio.Event()
            bot.wakeups.add(event)
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                pass
            finally:
                bot.wakeups.discard(event)

    def _delete_webhook(self, bot: _Bot, params: JSONDict) -> bool:
        if str(params.get("drop_pending_updates", "")).lower() == "true":
            bot.updates.clear()
        return True

    def _set_my_commands(self, bot: _Bot, params: JSONDict) -> bool:
        commands = _json(params.get("commands", "[]"))
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", ""))):
                raise ApiError("Bad Request: BOT_COMMAND_INVALID")
        bot.commands[json.dumps([params.get("scope"), params.get("language_code")])] = commands
        return True

    def _get_my_commands(self, bot: _Bot, params: JSONDict) -> list[JSONDict]:
        return bot.commands.get(json.dumps([params.get("scope"), params.get("language_code")]), [])

    def _outgoing(self, bot: _Bot, params: JSONDict, **content: Any) -> JSONDict:
        chat_id = _int(params, "chat_id")
        reply_to: int | None = None
        if params.get("reply_parameters"):
            reply_to = int(_json(params["reply_parameters"])["message_id"])
        elif params.get("reply_to_message_id"):
            reply_to = _int(params, "reply_to_message_id")
        if reply_to is not None:
            if (original := bot.messages.get((chat_id, reply_to))) is not None:
                content["reply_to_message"] = {k: v for k, v in original.items() if k != "reply_to_message"}
            elif str(params.get("allow_sending_without_reply")).lower() != "true":
                raise ApiError("Bad Request: message to be replied not found")
        markup = _json(params["reply_markup"]) if params.get("reply_markup") else None
        if markup and "inline_keyboard" in markup:  # Telegram echoes inline keyboards only
            content["reply_markup"] = markup
        return self._new_message(bot, chat_id, bot.user, **content)

    def _send_message(self, bot: _Bot, params: JSONDict) -> JSONDict:
        text, parse_mode, plain = _text(params)
        message = self._outgoing(bot, params, text=plain)
        bot.sources[(message["chat"]["id"], message["message_id"])] = (text, parse_mode)
        self._record(bot, "sendMessage", message, params)
        return message

    def _edit_message_text(self, bot: _Bot, params: JSONDict) -> JSONDict:
        if params.get("inline_message_id"):
            raise ApiError("Bad Request: inline messages are not supported by FakeTelegram")
        key = (_int(params, "chat_id"), _int(params, "message_id"))
        message = bot.messages.get(key)
        if message is None:
            raise ApiError("Bad Request: message to edit not found")
        if message["from"]["id"] != bot.id:
            raise ApiError("Bad Request: message can't be edited")
        if "text" not in message:
            raise ApiError("Bad Request: there is no text in the message to edit")
        text, parse_mode, plain = _text(params)
        markup = _json(params["reply_markup"]) if params.get("reply_markup") else None
        markup = markup if markup and "inline_keyboard" in markup else None
        if bot.sources.get(key) == (text, parse_mode) and message.get("reply_markup") == markup:
            raise ApiError(NOT_MODIFIED)
        message = {k: v for k, v in message.items() if k != "reply_markup"}
        message.update(text=plain, edit_date=int(time.time()), **({"reply_markup": markup} if markup else {}))
        bot.messages[key], bot.sources[key] = message, (text, parse_mode)
        self._record(bot, "editMessageText", message, params)
        return message

    def _send_voice(self, bot: _Bot, params: JSONDict) -> JSONDict:
        upload = params.get("voice")
        if isinstance(upload, bytes):
            data, voice = upload, self._store_file(bot, upload, _int(params, "duration", 0))
        elif isinstance(upload, str) and upload in bot.files:
            _, data, voice = bot.files[upload]
        else:
            raise ApiError("Bad Request: wrong file identifier/HTTP URL specified")
        caption: dict[str, str] = {}
        if params.get("caption"):
            caption["caption"] = _check_entities(str(params["caption"]), params.get("parse_mode"))
        message = self._outgoing(bot, params, voice=voice, **caption)
        self._record(bot, "sendVoice", message, params, voice=data)
        return message

    def _send_chat_action(self, bot: _Bot, params: JSONDict) -> bool:
        _int(params, "chat_id")
        if params.get("action") not in _CHAT_ACTIONS:
            raise ApiError("Bad Request: wrong parameter action in request")
        return True

    def _delete_message(self, bot: _Bot, params: JSONDict) -> bool:
        key = (_int(params, "chat_id"), _int(params, "message_id"))
        if bot.messages.pop(key, None) is None:
            raise ApiError("Bad Request: message to delete not found")
        bot.sources.pop(key, None)
        return True

    def _answer_callback_query(self, bot: _Bot, params: JSONDict) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        if query_id not in bot.open_callbacks:
            raise ApiError("Bad Request: query is too old and response timeout expired or "
                           "query ID is invalid")
        bot.open_callbacks.discard(query_id)
        self.answered_callbacks.append({
            "token": bot.token, "callback_query_id": query_id, "text": params.get("text"),
            "show_alert": str(params.get("show_alert", "")).lower() == "true", "url": params.get("url")})
        return True

    def _get_file(self, bot: _Bot, params: JSONDict) -> JSONDict:
        file_id = str(params.get("file_id", ""))
        if file_id not in bot.files:
            raise ApiError("Bad Request: invalid file_id")
        path, data, meta = bot.files[file_id]
        return {"file_id": file_id, "file_unique_id": meta["file_unique_id"],
                "file_size": len(data), "file_path": path}
