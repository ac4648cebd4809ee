"""Notification outbox: dedup across restarts, per-chat order, retries through outages, no duplicates."""

from __future__ import annotations

import asyncio
import datetime as dtm
import random
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from channels.telegram.outbox import NotificationOutbox, OutboxItem, OutboxSender, retry_after_seconds

BOT = "owner"

# RetryAfter's own constructor reads its deprecated int-valued property (PTB 22.x).
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


class FakeTime:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class Recorder:
    """A fake ``send``: runs ``fail`` (which may raise) before each delivery, records what got through."""

    def __init__(self, time: FakeTime, fail: Callable[[OutboxItem], None] | None = None) -> None:
        self.time = time
        self.fail = fail
        self.attempts: list[int] = []
        self.delivered: list[tuple[int, int, float]] = []  # (item id, chat id, fake time)

    async def __call__(self, item: OutboxItem) -> int | None:
        self.attempts.append(item.id)
        if self.fail is not None:
            self.fail(item)
        self.delivered.append((item.id, item.chat_id, self.time.now))
        return 1000 + item.id


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[NotificationOutbox]:
    box = NotificationOutbox(tmp_path / "state" / "outbox.db")
    yield box
    box.close()


def make_sender(outbox: NotificationOutbox, send: Callable[[OutboxItem], Awaitable[int | None]], time: FakeTime,
                **kwargs: float) -> OutboxSender:
    return OutboxSender(outbox, BOT, send, clock=time.clock, sleep=time.sleep, rng=random.Random(7), **kwargs)


def fill(outbox: NotificationOutbox, chats: list[int]) -> list[int]:
    """One text item per entry of ``chats``, in that order; returns their ids."""
    for n, chat in enumerate(chats):
        assert outbox.enqueue(BOT, chat, "text", {"text": f"message {n}"}, f"event-{n}")
    return [item.id for item in outbox.pending(BOT)]


def per_chat(deliveries: list[tuple[int, int, float]]) -> dict[int, list[int]]:
    chats: dict[int, list[int]] = {}
    for item_id, chat, _ in deliveries:
        chats.setdefault(chat, []).append(item_id)
    return chats


# ---------------------------------------------------------------- the store


def test_enqueue_is_idempotent_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = NotificationOutbox(path)
    assert box.enqueue(BOT, 42, "text", {"text": "Звонок от +7 900"}, "call-1/head") is True
    assert box.enqueue(BOT, 42, "text", {"text": "different text, same event"}, "call-1/head") is False
    assert box.enqueue("other-bot", 42, "text", {"text": "x"}, "call-1/head") is True
    box.close()

    reopened = NotificationOutbox(path)  # the daemon restarted and the bus replays the event
    assert reopened.enqueue(BOT, 42, "text", {"text": "Звонок от +7 900"}, "call-1/head") is False
    [item] = reopened.pending(BOT)
    assert item.payload == {"text": "Звонок от +7 900"} and item.chat_id == 42 and item.attempts == 0
    reopened.mark_sent(item.id, 555)
    assert reopened.enqueue(BOT, 42, "text", {"text": "again"}, "call-1/head") is False  # sent items still dedup
    assert reopened.counts(BOT) == {"pending": 0, "sent": 1, "failed": 0}
    reopened.close()


def test_pending_heads_and_order_per_chat(outbox: NotificationOutbox) -> None:
    ids = fill(outbox, [1, 2, 1, 1, 2])
    assert [item.id for item in outbox.pending(BOT)] == ids
    assert [item.chat_id for item in outbox.pending(BOT)] == [1, 2, 1, 1, 2]
    head = outbox.head(BOT, 1)
    assert head is not None and head.id == ids[0]
    assert [item.id for item in outbox.heads(BOT)] == [ids[0], ids[1]]
    outbox.mark_sent(ids[0], 10)
    outbox.mark_failed(ids[1], "Forbidden: bot was blocked by the user")
    assert [item.id for item in outbox.heads(BOT)] == [ids[2], ids[4]]
    assert outbox.head(BOT, 3) is None
    assert outbox.mark_sent(ids[0], 11) is False  # not pending any more
    [(failed, error)] = outbox.failed(BOT)
    assert failed.id == ids[1] and error == "Forbidden: bot was blocked by the user"
    assert outbox.counts(BOT) == {"pending": 3, "sent": 1, "failed": 1}


def test_payload_round_trip_and_attempts(outbox: NotificationOutbox) -> None:
    payload = {"path": "/data/calls/x/caller.wav", "caption": "Голос звонящего 🎙", "buttons": [[["Call", "dial:+7"]]]}
    outbox.enqueue(BOT, -100123, "voice", payload, "call-x/voice")
    item = outbox.pending(BOT)[0]
    assert item.kind == "voice" and item.payload == payload and item.chat_id == -100123
    outbox.note_attempt(item.id, "TimedOut")
    outbox.note_attempt(item.id, "TimedOut")
    assert outbox.pending(BOT)[0].attempts == 2


def test_prune_sent_keeps_pending_and_failed(tmp_path: Path) -> None:
    wall = [1000.0]
    box = NotificationOutbox(tmp_path / "outbox.db", clock=lambda: wall[0])
    ids = fill(box, [1, 1, 1])
    box.mark_sent(ids[0], 1)
    box.mark_failed(ids[1], "BadRequest")
    wall[0] = 2000.0
    assert box.prune_sent(older_than_s=3600) == 0
    assert box.prune_sent(older_than_s=500) == 1
    assert box.counts(BOT) == {"pending": 1, "sent": 0, "failed": 1}
    box.close()


def test_closed_outbox_refuses_use(outbox: NotificationOutbox) -> None:
    outbox.close()
    outbox.close()
    with pytest.raises(RuntimeError):
        outbox.pending(BOT)


# ---------------------------------------------------------------- the sender


@pytest.mark.parametrize("retry_after", [3, dtm.timedelta(seconds=3)])
@pytest.mark.parametrize("timedelta_mode", ["false", "true"])
async def test_retry_after_waits_exactly_then_delivers(
    outbox: NotificationOutbox, monkeypatch: pytest.MonkeyPatch, retry_after: int | dtm.timedelta, timedelta_mode: str
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", timedelta_mode)  # PTB gives an int or a timedelta
    time = FakeTime()
    raised: list[int] = []

    def flood_once(item: OutboxItem) -> None:
        if not raised:
            raised.append(item.id)
            raise RetryAfter(retry_after)

    send = Recorder(time, flood_once)
    ids = fill(outbox, [7, 7])
    sender = make_sender(outbox, send, time)
    await asyncio.wait_for(sender.deliver_pending(), 5)
    assert time.sleeps == [3.0]
    assert send.delivered == [(ids[0], 7, 3.0), (ids[1], 7, 3.0)]
    assert send.attempts == [ids[0], ids[0], ids[1]]
    assert sender.delivered == 2 and sender.retries == 1 and "retry after 3" in (sender.last_error or "")
    assert outbox.counts(BOT) == {"pending": 0, "sent": 2, "failed": 0}


def test_retry_after_seconds_accepts_both_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    for mode in ("false", "true"):
        monkeypatch.setenv("PTB_TIMEDELTA", mode)
        assert retry_after_seconds(RetryAfter(12)) == 12.0
        assert retry_after_seconds(RetryAfter(dtm.timedelta(seconds=1.5))) == 1.5


@pytest.mark.parametrize("error", [NetworkError("Bad Gateway"), TimedOut(), ConnectionResetError("reset")])
async def test_ten_minute_outage_delivers_everything_once_in_order(
    outbox: NotificationOutbox, error: Exception
) -> None:
    time = FakeTime()

    def outage(item: OutboxItem) -> None:
        if time.now < 600:
            raise error

    send = Recorder(time, outage)
    chats = [1, 2] * 10
    ids = fill(outbox, chats)
    sender = make_sender(outbox, send, time, backoff_initial_s=1.0, backoff_max_s=60.0)
    await asyncio.wait_for(sender.deliver_pending(), 5)

    assert sorted(item_id for item_id, _, _ in send.delivered) == ids  # each exactly once
    expected = {chat: [i for i, c in zip(ids, chats, strict=True) if c == chat] for chat in (1, 2)}
    assert per_chat(send.delivered) == expected
    assert max(time.sleeps) <= 60.0
    assert 600.0 <= time.now <= 660.0
    assert all(t >= 600.0 for _, _, t in send.delivered)
    assert sender.delivered == 20 and sender.retries > 10
    assert outbox.counts(BOT) == {"pending": 0, "sent": 20, "failed": 0}


async def test_backoff_grows_exponentially_with_jitter_to_the_cap(outbox: NotificationOutbox) -> None:
    time = FakeTime()

    def outage(item: OutboxItem) -> None:
        if time.now < 1000:
            raise NetworkError("down")

    fill(outbox, [1])
    sender = make_sender(outbox, Recorder(time, outage), time, backoff_initial_s=1.0, backoff_max_s=60.0)
    await asyncio.wait_for(sender.deliver_pending(), 5)
    for n, slept in enumerate(time.sleeps[:6]):
        assert 2.0**n / 2 <= slept <= 2.0**n
    assert all(30.0 <= slept <= 60.0 for slept in time.sleeps[7:])


@pytest.mark.parametrize("error", [BadRequest("Bad Request: chat not found"), Forbidden("Forbidden: bot was blocked")])
async def test_permanent_error_marks_failed_and_the_next_item_goes(
    outbox: NotificationOutbox, error: Exception
) -> None:
    time = FakeTime()
    ids = fill(outbox, [5, 5, 5])

    def reject_second(item: OutboxItem) -> None:
        if item.id == ids[1]:
            raise error

    send = Recorder(time, reject_second)
    sender = make_sender(outbox, send, time)
    await asyncio.wait_for(sender.deliver_pending(), 5)
    assert [d[0] for d in send.delivered] == [ids[0], ids[2]]
    assert send.attempts == ids
    assert time.sleeps == []
    [(failed, message)] = outbox.failed(BOT)
    assert failed.id == ids[1] and message is not None and str(error) in message
    assert outbox.counts(BOT) == {"pending": 0, "sent": 2, "failed": 1}
    assert sender.failed == 1 and sender.delivered == 2


async def test_a_failing_chat_does_not_hold_up_the_others(outbox: NotificationOutbox) -> None:
    time = FakeTime()

    def chat_one_down(item: OutboxItem) -> None:
        if item.chat_id == 1 and time.now < 100:
            raise NetworkError("chat 1 unreachable")

    send = Recorder(time, chat_one_down)
    ids = fill(outbox, [1, 2, 1, 2, 2])
    await asyncio.wait_for(make_sender(outbox, send, time).deliver_pending(), 5)
    chat_two = [(i, t) for i, c, t in send.delivered if c == 2]
    assert chat_two == [(ids[1], 0.0), (ids[3], 0.0), (ids[4], 0.0)]
    assert per_chat(send.delivered)[1] == [ids[0], ids[2]]


async def test_run_wakes_on_notify(outbox: NotificationOutbox) -> None:
    time = FakeTime()
    send = Recorder(time)
    sender = make_sender(outbox, send, time)
    task = asyncio.create_task(sender.run())
    try:
        for n in range(3):
            outbox.enqueue(BOT, 9, "text", {"text": str(n)}, f"k{n}")
            sender.notify()
            for _ in range(50):
                await asyncio.sleep(0)
                if len(send.delivered) == n + 1:
                    break
            assert len(send.delivered) == n + 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert outbox.counts(BOT)["sent"] == 3


async def test_notify_cuts_a_backoff_wait_short_for_another_chat(outbox: NotificationOutbox) -> None:
    """Chat 1 is backing off for up to a minute; a new item for chat 2 goes at once."""
    time = FakeTime()
    long_sleep_started = asyncio.Event()

    async def real_wait_sleep(seconds: float) -> None:  # a sleep that does not end by itself
        time.sleeps.append(seconds)
        long_sleep_started.set()
        await asyncio.Event().wait()

    def chat_one_down(item: OutboxItem) -> None:
        if item.chat_id == 1:
            raise NetworkError("down")

    send = Recorder(time, chat_one_down)
    sender = OutboxSender(outbox, BOT, send, clock=time.clock, sleep=real_wait_sleep, rng=random.Random(1))
    fill(outbox, [1])
    task = asyncio.create_task(sender.run())
    try:
        await asyncio.wait_for(long_sleep_started.wait(), 5)
        outbox.enqueue(BOT, 2, "text", {"text": "urgent"}, "other")
        sender.notify()
        for _ in range(50):
            await asyncio.sleep(0)
            if send.delivered:
                break
        assert [c for _, c, _ in send.delivered] == [2]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_cancelled_sender_leaves_no_half_state_and_a_new_one_finishes(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = NotificationOutbox(path)
    ids = fill(box, [1, 2] * 5)
    time = FakeTime()
    in_flight = asyncio.Event()
    delivered: list[int] = []

    async def hangs_on_the_fourth(item: OutboxItem) -> int:
        if len(delivered) == 3:
            in_flight.set()
            await asyncio.Event().wait()  # the request never returns; the sender is stopped meanwhile
        delivered.append(item.id)
        return item.id

    sender = make_sender(box, hangs_on_the_fourth, time)
    task = asyncio.create_task(sender.run())
    await asyncio.wait_for(in_flight.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert box.counts(BOT) == {"pending": 7, "sent": 3, "failed": 0}
    box.close()

    reopened = NotificationOutbox(path)
    second = Recorder(FakeTime())
    await asyncio.wait_for(make_sender(reopened, second, FakeTime()).deliver_pending(), 5)
    delivered += [item_id for item_id, _, _ in second.delivered]
    assert sorted(delivered) == ids  # every item exactly once across both runs
    for chat in (1, 2):
        mine = [i for i in delivered if i in ids[chat - 1 :: 2]]
        assert mine == ids[chat - 1 :: 2]
    assert reopened.counts(BOT) == {"pending": 0, "sent": 10, "failed": 0}
    reopened.close()


# ---------------------------------------------------------------- property

OUTCOMES = ("ok", "network", "timeout", "oserror", "retry_after", "bad_request")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chats=st.lists(st.sampled_from([1, 2, 3]), min_size=1, max_size=12),
    plan=st.lists(st.sampled_from(OUTCOMES), max_size=40),
)
def test_any_interleaving_of_failures_delivers_each_item_once_in_chat_order(chats: list[int], plan: list[str]) -> None:
    asyncio.run(_property_run(chats, plan))


async def _property_run(chats: list[int], plan: list[str]) -> None:
    remaining = list(plan)
    time = FakeTime()

    def scripted(item: OutboxItem) -> None:
        outcome = remaining.pop(0) if remaining else "ok"
        if outcome == "network":
            raise NetworkError("Bad Gateway")
        if outcome == "timeout":
            raise TimedOut()
        if outcome == "oserror":
            raise ConnectionRefusedError("refused")
        if outcome == "retry_after":
            raise RetryAfter(2)
        if outcome == "bad_request":
            raise BadRequest("Bad Request: message is too long")

    box = NotificationOutbox(Path(":memory:"))  # the property is about the sender; durability is tested above
    try:
        ids = fill(box, chats)
        send = Recorder(time, scripted)
        sender = make_sender(box, send, time, backoff_initial_s=0.5, backoff_max_s=8.0)
        await asyncio.wait_for(sender.deliver_pending(), 10)

        delivered = [item_id for item_id, _, _ in send.delivered]
        failed = [item.id for item, _ in box.failed(BOT)]
        assert len(delivered) == len(set(delivered))
        assert sorted(delivered + failed) == ids  # each item exactly once: delivered or given up
        for chat in set(chats):
            expected = [i for i, c in zip(ids, chats, strict=True) if c == chat]
            assert [i for i in delivered if i in expected] == [i for i in expected if i not in failed]
            tried = [i for i in send.attempts if i in expected]
            assert tried == sorted(tried)  # no item ever overtakes an earlier one of its chat
        assert all(slept <= 8.0 for slept in time.sleeps)
        assert box.counts(BOT) == {"pending": 0, "sent": len(delivered), "failed": len(failed)}
    finally:
        box.close()
