"""Fitting a call's LLM request into llama.cpp's context window: what it costs per turn, and when a call trims.

A Russian call with the bundled persona Gulya (her prompt and tools, as the
call sends them) grows by one caller line and one reply per turn, counted in
SmolLM2's vocabulary (the packaged GGUF, ``vocab_only``) against a 2048-token
window with a 200-token reply. Per turn: the time ``fit_context`` takes on
the event loop (the counts of earlier messages cached, as in a call), and the
time for a history seen the first time (a web chat's 40 messages, nothing
cached). Also the vocabulary's load time and the turns at which the call's
history was trimmed. Prints p50/p95/p99 and ends with one JSON line. Never
fails on time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.persona_schema import bundled_personas  # noqa: E402
from daemon.dialogue.llm_dialogue import END_CALL, HISTORY_FILL, SAVE_MESSAGE, system_prompt  # noqa: E402
from engines.llm.context_fit import fit_context  # noqa: E402
from engines.llm.gguf_model import resolve_gguf  # noqa: E402
from engines.llm.interface import ChatDelta, ChatMessage, ChatRequest, LlmBackend  # noqa: E402
from engines.llm.token_counter import GgufTokenCounter  # noqa: E402

CALLER = [
    "Здравствуйте, это Иван Петров из компании Ромашка, я по поводу счёта за прошлый месяц.",
    "Там сумма больше, чем мы договаривались, примерно на десять тысяч рублей.",
    "Пусть Анна Сергеевна перезвонит мне сегодня после обеда, если сможет.",
    "Мой номер восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь.",
]
REPLY = "Поняла вас. Я передам Анне Сергеевне, что вы звонили по поводу счёта, и попрошу перезвонить. Что-нибудь ещё?"


class Vocabulary(LlmBackend):
    """The fitter's view of a llama.cpp backend: its window, reply budget and vocabulary."""

    name = "llama_cpp"

    def __init__(self, counter: GgufTokenCounter, window: int) -> None:
        self.counter, self.window = counter, window

    @property
    def model(self) -> str:
        return "SmolLM2-135M vocabulary"

    @property
    def context_window(self) -> int:
        return self.window

    def count_tokens(self, text: str) -> int:
        return self.counter.count(text)

    async def load(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatDelta]:
        raise NotImplementedError("the bench only fits")
        yield ChatDelta()


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(int(q * len(ordered)), len(ordered) - 1)]  # noqa: E731
    return {"p50": round(statistics.median(ordered), 3), "p95": round(pick(0.95), 3), "p99": round(pick(0.99), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=60)
    parser.add_argument("--window", type=int, default=2048)
    args = parser.parse_args()
    path = resolve_gguf("packaged:smollm2-135m", Path(tempfile.mkdtemp(prefix="bench-models-")))
    started = time.perf_counter()
    counter = GgufTokenCounter(path)
    load_ms = (time.perf_counter() - started) * 1000
    backend = Vocabulary(counter, args.window)
    persona = bundled_personas()["gulya"]
    messages = [ChatMessage("system", system_prompt(persona, "+79161234567")), ChatMessage("assistant", persona.greeting)]
    template = ChatRequest(messages=tuple(messages), tools=(SAVE_MESSAGE, END_CALL), max_tokens=200)
    in_call: list[float] = []
    trimmed_at: list[int] = []
    prompt_tokens: list[int] = []
    for turn in range(1, args.turns + 1):
        messages.append(ChatMessage("user", f"{CALLER[turn % len(CALLER)]} ({turn})"))
        request = replace(template, messages=tuple(messages))
        started = time.perf_counter()
        fitted = fit_context(request, backend, fill=HISTORY_FILL)
        in_call.append((time.perf_counter() - started) * 1000)
        if fitted.trimmed:
            trimmed_at.append(turn)
            messages = list(fitted.request.messages)
        prompt_tokens.append(fitted.prompt_tokens)
        messages.append(ChatMessage("assistant", f"{REPLY} ({turn})"))
    chat = [m for m in messages[1:] if m.role in ("user", "assistant")][:40]
    cold: list[float] = []
    for run in range(20):
        fresh = [ChatMessage(m.role, f"{m.content} [{run}]") for m in chat]  # new texts: nothing cached
        request = replace(template, messages=(messages[0], *fresh))
        started = time.perf_counter()
        fit_context(request, backend)
        cold.append((time.perf_counter() - started) * 1000)
    counter.close()
    summary = {
        "window": args.window, "turns": args.turns, "vocab_load_ms": round(load_ms, 1),
        "fit_in_call_ms": percentiles(in_call), "fit_40_new_messages_ms": percentiles(cold),
        "trimmed_at_turns": trimmed_at, "prompt_tokens_max": max(prompt_tokens),
        "first_turn_prompt_tokens": prompt_tokens[0],
    }
    print(f"vocabulary load                {load_ms:8.1f} ms")
    print(f"fit per call turn (cached)     p50 {summary['fit_in_call_ms']['p50']} ms  p95 {summary['fit_in_call_ms']['p95']} ms  p99 {summary['fit_in_call_ms']['p99']} ms")
    print(f"fit of 40 new chat messages    p50 {summary['fit_40_new_messages_ms']['p50']} ms  p95 {summary['fit_40_new_messages_ms']['p95']} ms  p99 {summary['fit_40_new_messages_ms']['p99']} ms")
    print(f"prompt tokens: first turn {prompt_tokens[0]}, max {max(prompt_tokens)} of a {args.window - 200}-token budget")
    print(f"history trimmed at turns {trimmed_at}")
    print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
