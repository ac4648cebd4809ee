"""The LLM engine the daemon talks to: streamed chat over a fallback chain of backends.

``LlmEngine.stream`` yields a reply's text as it is generated, and at the
end one delta with the whole tool calls (if any), the finish reason and the
usage. Behind it a ``FallbackChain`` serves from the first healthy backend:

- a backend that does not produce its first output within
  ``first_token_timeout_s`` is skipped for this request (it stays loaded);
- a backend that fails mid-stream is failed over (the chain reloads it in
  the background) and the next one *continues* the reply: it gets the
  original messages plus the partial reply and an instruction to continue,
  and a repeated beginning is stripped (``reply_continuation``);
- tool calls are collected whole and delivered at the end, so a failover
  never leaves the caller with half a call's arguments;
- a request longer than a backend's context window goes to it without its
  oldest turns (``context_fit``); one that does not fit even so is not sent
  to that backend at all (a local server would drop it and restart), and
  when no backend can take it ``ContextTooLong`` says so.

``persona_chain`` names the backends (by their labels) a persona may use;
they serve in the engine's chain order. Closing the stream (the caller
stopped listening, e.g. barge-in) closes the backend's stream, which stops
its generation.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace

from engines.chained_engine import ChainedEngine
from engines.engine_status import EngineStatus
from engines.fallback_chain import BackendSlot, FallbackChain, NoEligibleBackend, Progress
from engines.llm.context_fit import Fitted, fit_context
from engines.llm.interface import ChatDelta, ChatRequest, LlmBackend, Usage
from engines.llm.reply_assembly import ChatReply, ToolCallAccumulator, collect_reply
from engines.llm.reply_continuation import RepeatStripper, continuation_request

log = logging.getLogger("secretary.engines.llm")


class ContextTooLong(NoEligibleBackend):
    """No backend this request may use can hold it, even without its older turns (a message too long)."""


class LlmEngine(ChainedEngine[LlmBackend]):
    def __init__(
        self,
        slots: Sequence[BackendSlot[LlmBackend]],
        on_status: Callable[[EngineStatus], None] | None = None,
        *,
        first_token_timeout_s: float | None = 3.0,
        retry_initial_s: float = 10.0,
        retry_max_s: float = 300.0,
        load_timeout_s: float = 300.0,
    ) -> None:
        labels = [slot.label for slot in slots]
        if len(set(labels)) != len(labels):
            raise ValueError(f"LLM backend labels must be unique: {labels}")
        self.labels: tuple[str, ...] = tuple(labels)
        self.first_token_timeout_s = first_token_timeout_s
        super().__init__(
            FallbackChain(
                "llm",
                slots,
                on_status,
                retry_initial_s=retry_initial_s,
                retry_max_s=retry_max_s,
                load_timeout_s=load_timeout_s,
            )
        )

    def label_of(self, backend: LlmBackend) -> str:
        return self._chain.label_of(backend)

    # -- serving -----------------------------------------------------------

    async def stream(
        self,
        request: ChatRequest,
        persona_chain: Sequence[str] | None = None,
        first_token_timeout_s: float | None = None,
    ) -> AsyncIterator[ChatDelta]:
        """Stream the reply to ``request``.

        ``first_token_timeout_s`` None uses the engine's default deadline.
        Raises ``ChainExhausted`` when no backend could serve, and
        ``RequestError`` (no failover) when a backend rejected the request.
        """
        deadline = self.first_token_timeout_s if first_token_timeout_s is None else first_token_timeout_s
        persona_may_use = self._persona_filter(persona_chain)
        fits: dict[int, Fitted] = {}  # by backend: counted once per request, whether it is asked or used

        def fitted_for(backend: LlmBackend) -> Fitted:
            if id(backend) not in fits:
                fits[id(backend)] = fit_context(request, backend)
            return fits[id(backend)]

        def may_serve(backend: LlmBackend) -> bool:
            return persona_may_use(backend) and fitted_for(backend).fits

        def attempt(backend: LlmBackend, progress: Progress[ChatDelta]) -> AsyncIterator[ChatDelta]:
            return self._attempt(backend, self._logged(fitted_for(backend), backend), progress)

        try:
            async with contextlib.aclosing(
                self._chain.stream(attempt, first_item_timeout_s=deadline, eligible=may_serve)
            ) as deltas:
                async for delta in deltas:
                    if not delta.empty:
                        yield delta
        except NoEligibleBackend as exc:
            too_small = self._chain.first_eligible(persona_may_use)
            fitted = fitted_for(too_small) if too_small is not None else None
            if too_small is None or fitted is None or fitted.fits:
                raise  # not for its length: the ones it fitted were passed over for other reasons
            raise ContextTooLong(
                f"llm: the request is too long for {self.label_of(too_small)}'s {too_small.context_window}-token "
                f"context: {fitted.prompt_tokens} tokens even without its older turns, room for {fitted.budget}"
            ) from exc

    async def complete(
        self,
        request: ChatRequest,
        persona_chain: Sequence[str] | None = None,
        first_token_timeout_s: float | None = None,
    ) -> ChatReply:
        """The whole reply (for summaries and other non-spoken uses)."""
        async with contextlib.aclosing(self.stream(request, persona_chain, first_token_timeout_s)) as deltas:
            return await collect_reply(deltas)

    async def prime(self, request: ChatRequest, persona_chain: Sequence[str] | None = None) -> str | None:
        """Have the backend that would serve ``request`` evaluate its prompt now, so the real request skips that.

        Only a backend that keeps its last prompt (``caches_prompt``: llama.cpp,
        vLLM) is primed, with one token to generate; a hosted API is never sent
        a request for this. Returns the primed backend's label, or None. A
        failure here is not the backend's failure: it is logged and ignored.
        """
        backend = self._chain.first_eligible(self._persona_filter(persona_chain))
        if backend is None or not backend.caches_prompt:
            return None
        label = self._chain.label_of(backend)
        try:
            async with contextlib.aclosing(backend.stream_chat(replace(request, max_tokens=1))) as deltas:
                async for _ in deltas:
                    pass
        except Exception as exc:  # noqa: BLE001 - priming is an optimisation; the real request will fail over
            log.info("llm: priming %s failed: %s", label, exc)
            return None
        return label

    def fit(self, request: ChatRequest, persona_chain: Sequence[str] | None = None, *, fill: float = 1.0) -> Fitted:
        """``request`` as it fits the window of the backend that would serve it now (see ``context_fit``)."""
        backend = self._chain.first_eligible(self._persona_filter(persona_chain))
        return fit_context(request, backend, fill=fill) if backend is not None else Fitted(request, 0)

    def _logged(self, fitted: Fitted, backend: LlmBackend) -> ChatRequest:
        if fitted.trimmed:
            log.info("llm: %s: the oldest %d messages left out to fit its %s-token context (prompt now %d)",
                     self._chain.label_of(backend), fitted.dropped_messages, backend.context_window, fitted.prompt_tokens)
        return fitted.request

    def _persona_filter(self, persona_chain: Sequence[str] | None) -> Callable[[LlmBackend], bool]:
        if persona_chain is None:
            return lambda backend: True
        unknown = [label for label in persona_chain if label not in self.labels]
        if unknown or not persona_chain:
            raise ValueError(f"persona chain {list(persona_chain)} must name LLM backends of {list(self.labels)}")
        allowed = frozenset(persona_chain)
        return lambda backend: self._chain.label_of(backend) in allowed

    async def _attempt(
        self,
        backend: LlmBackend,
        request: ChatRequest,
        progress: Progress[ChatDelta],
    ) -> AsyncIterator[ChatDelta]:
        """One backend's part of the reply (continuing what earlier backends delivered); ``request`` fits it."""
        said = "".join(d.text for d in progress.delivered)
        pieces = sum(1 for d in progress.delivered if d.text)
        stripper = RepeatStripper(said)
        tools = ToolCallAccumulator()
        finish_reason: str | None = None
        usage: Usage | None = None
        alive = False
        async with contextlib.aclosing(backend.stream_chat(continuation_request(request, said, pieces))) as deltas:
            async for delta in deltas:
                for fragment in delta.tool_calls:
                    tools.add(fragment)
                finish_reason = delta.finish_reason or finish_reason
                usage = delta.usage or usage
                text = stripper.feed(delta.text) if delta.text else ""
                if text:
                    alive = True
                    yield ChatDelta(text=text)
                elif not alive and (delta.text or delta.tool_calls):
                    # Output is arriving but held (a repeat being checked, a tool call being
                    # built): an empty delta tells the chain the first-token deadline is met.
                    alive = True
                    yield ChatDelta()
        stripper.finish()
        yield ChatDelta(tool_calls=tools.as_deltas(), finish_reason=finish_reason, usage=usage)
