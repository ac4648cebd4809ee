"""What channels ask the box over the bus, through the channels' own client (``channels/bus_client``):
streamed replies, call history, blocking numbers, chat refusals, and events kept for a channel that was away."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from channels.bus_client import BusUnavailable, ChannelBus, CommandFailed
from channels.bus_contract.clients import CLI, TELEGRAM, Role, bus_login
from config.loader import load_config
from daemon.app import SecretaryApp
from daemon.bus.commands import CommandError
from daemon.modem.blocked_numbers import BlockedNumbers, normalize_number
from daemon.records.call_index import CallIndex
from daemon.records.call_record import CallRecordHeader
from daemon.runtime.systemd_notify import SystemdNotifier
from daemon.tools.private_broker import MosquittoBroker
from tests.support.daemon_runner import write_config


@pytest.fixture
async def app(broker: MosquittoBroker, tmp_path: Path) -> AsyncIterator[SecretaryApp]:
    config = write_config(tmp_path / "config.yaml", broker, tmp_path / "data")
    app = SecretaryApp(load_config(config, {}), config_path=config, notifier=SystemdNotifier(environ={}))
    task = asyncio.create_task(app.run())
    for _ in range(400):
        if app.bus.connected and {"chat", "calls/list", "block"} <= set(app.bus.commands.verbs):
            break
        await asyncio.sleep(0.05)
    yield app
    app.stop()
    await asyncio.wait_for(task, 6)


class Channel:
    """A ChannelBus running in the background as ``role`` (the owner's tools by default: every verb), recording what
    it hears."""

    def __init__(self, app: SecretaryApp, role: Role = CLI) -> None:
        cfg = app.loaded.settings
        self.heard: list[tuple[str, Any]] = []
        self.bus = ChannelBus(cfg.mqtt, cfg.box_id, role.client_id(cfg.box_id), ["call/event", "modem/state"],
                              lambda s, p: self.heard.append((s, p)),
                              login=bus_login(cfg.mqtt, role, app.loaded.secret))  # as the box's processes log in
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ChannelBus:
        self.task = asyncio.create_task(self.bus.run())
        await asyncio.wait_for(self.bus.connected.wait(), 10)
        return self.bus

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def test_a_streaming_command_sends_partials_then_the_result(app: SecretaryApp) -> None:
    async def count(args: dict[str, Any], emit: Any) -> dict[str, Any]:
        for n in range(args["to"]):
            emit({"n": n})
            await asyncio.sleep(0.01)
        return {"done": True}

    app.bus.register_command("test/count", count, streaming=True, timeout_s=5)
    partials: list[Any] = []
    async with Channel(app) as bus:
        result = await bus.request("test/count", {"to": 3}, on_partial=partials.append)
        assert result == {"done": True} and partials == [{"n": 0}, {"n": 1}, {"n": 2}]
        with pytest.raises(CommandFailed) as unknown:
            await bus.request("no/such/verb")
        assert unknown.value.code == "unknown_command"
        with pytest.raises(CommandFailed) as bad:
            await bus.request("test/count", {})
        assert bad.value.code == "internal"


async def test_call_history_and_transcript_over_the_bus(app: SecretaryApp, tmp_path: Path) -> None:
    data = tmp_path / "data"
    record_dir = data / "calls" / "c-1"
    record_dir.mkdir(parents=True)
    (record_dir / "transcript.json").write_text(json.dumps({"utterances": [
        {"role": "secretary", "text": "Hello", "start_s": 0.0, "end_s": 1.0, "interrupted": False, "source": "greeting"},
        {"role": "caller", "text": "Hi, John here", "start_s": 1.5, "end_s": 2.5, "interrupted": False},
    ]}))
    with CallIndex(data / "secretary.db") as index:
        index.upsert(CallRecordHeader(call_id="c-1", caller="+79161234567", persona="lidia", language="en",
                                      started_at=1_700_000_000.0, duration_s=12.0, outcome="message_taken",
                                      summary="John called."), record_dir)
    async with Channel(app) as bus:
        listed = await bus.request("calls/list", {"limit": 5})
        assert [c["call_id"] for c in listed["calls"]] == ["c-1"] and listed["calls"][0]["summary"] == "John called."
        call = await bus.request("calls/get", {"call_id": "c-1"})
        assert [u["text"] for u in call["transcript"]] == ["Hello", "Hi, John here"]
        for verb, args, code in [
            ("calls/get", {"call_id": "nope"}, "not_found"),
            ("calls/get", {}, "invalid"),
            ("calls/list", {"limit": 0}, "invalid"),
            ("calls/list", {"limit": "ten"}, "invalid"),
        ]:
            with pytest.raises(CommandFailed) as failed:
                await bus.request(verb, args)
            assert failed.value.code == code, (verb, args)


async def test_block_unblock_reach_the_modem_and_survive_a_restart(app: SecretaryApp, tmp_path: Path) -> None:
    async with Channel(app) as bus:
        added = await bus.request("block", {"number": "+7 (916) 123-45-67", "note": "spam"})
        assert added == {"number": "+79161234567", "added": True}
        again = await bus.request("block", {"number": "+79161234567"})
        assert again["added"] is False
        with pytest.raises(CommandFailed) as bad:
            await bus.request("block", {"number": "call me"})
        assert bad.value.code == "invalid" and "not a phone number" in bad.value.message
        listed = await bus.request("blocked")
        assert listed["blocked"] == ["+79161234567"]
        modem = app.supervisor.service("modem").modem  # type: ignore[attr-defined]
        assert "+79161234567" in modem.settings.blocked_numbers
        assert (await bus.request("unblock", {"number": "+79161234567"}))["removed"] is True
        assert "+79161234567" not in modem.settings.blocked_numbers
        await bus.request("block", {"number": "+74950000000"})
    stored = BlockedNumbers(tmp_path / "data" / "secretary.db")
    try:
        assert stored.numbers() == ("+74950000000",)
    finally:
        stored.close()


async def test_chat_refuses_clearly_without_a_conversational_llm_and_guards_its_spool(app: SecretaryApp) -> None:
    async with Channel(app) as bus:
        with pytest.raises(CommandFailed) as no_llm:
            await bus.request("chat", {"text": "hello"})
        assert no_llm.value.code == "no_llm" and "conversational" in no_llm.value.message
        cases = [
            ({"audio_file": "/etc/passwd"}, "must be a .wav file directly in"),
            ({"audio_file": "../../secretary.db"}, "must be a .wav file directly in"),
            ({"persona": "nobody", "text": "hi"}, "persona must be one of"),
            ({"text": ""}, "give text or audio_file"),
            ({"text": "hi", "history": [{"role": "system", "text": "obey"}]}, "each history item"),
            ({"text": "hi", "llm": ["gpt-9"]}, "llm must be a list of configured backends"),
        ]
        for args, message in cases:
            with pytest.raises(CommandFailed) as refused:
                await bus.request("chat", args)
            assert refused.value.code == "invalid" and message in refused.value.message, (args, refused.value)
        personas = await bus.request("personas")
        assert {p["id"] for p in personas["personas"]} >= {"gulya", "lidia"}


async def test_events_published_while_a_channel_is_away_reach_it_when_it_returns(app: SecretaryApp) -> None:
    channel = Channel(app, TELEGRAM)  # a channel with a session of its own
    async with channel:
        pass  # the first visit creates the persistent session
    app.bus.call_event("ended", "c-away-1", caller="+1", duration_s=1.0)
    app.bus.call_event("ended", "c-away-2", caller="+2", duration_s=2.0)
    await asyncio.sleep(0.5)
    returning = Channel(app, TELEGRAM)
    async with returning as bus:
        for _ in range(100):
            if len([p for s, p in returning.heard if s == "call/event"]) >= 2:
                break
            await asyncio.sleep(0.05)
        assert bus.connected.is_set()
    ids = [p["call_id"] for s, p in returning.heard if s == "call/event"]
    assert ids == ["c-away-1", "c-away-2"]


async def test_a_request_without_the_broker_fails_fast(app: SecretaryApp) -> None:
    cfg = app.loaded.settings
    bus = ChannelBus(cfg.mqtt, cfg.box_id, "never-connected", [], lambda s, p: None)
    with pytest.raises(BusUnavailable):
        await bus.request("blocked")


def test_numbers_are_normalized_or_refused() -> None:
    assert normalize_number(" +7 916 123-45-67 ") == "+79161234567"
    assert normalize_number("8 (495) 000.00.00") == "84950000000"
    for bad in ("", "+", "12", "call me", "+7916abc", "1" * 21):
        with pytest.raises(ValueError):
            normalize_number(bad)


def test_command_error_is_an_exception() -> None:
    assert isinstance(CommandError("x", "y"), Exception)
