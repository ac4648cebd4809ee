"""WorkerTtsBackend with Piper running in a real worker process: streaming, cancel, death, failover, bad workers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from engines.backend import BackendError, BackendUnavailable
from engines.engine_status import EngineState, EngineStatus
from engines.fallback_chain import BackendSlot, RequestError
from engines.tts.backend_factory import build_tts_backend
from engines.tts.interface import AudioChunk, SynthesisRequest, TtsBackend
from engines.tts.settings import PiperSettings, WorkerSettings
from engines.tts.tts_engine import TtsEngine
from engines.tts.worker_client import WorkerTtsBackend

SENTENCES = [
    "The first sentence is here.",
    "Then comes the second one.",
    "A third sentence follows it.",
    "The fourth one is longer than the others were.",
    "And this is the fifth and final sentence.",
]
LONG_TEXT = " ".join(SENTENCES)


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _piper_worker(tmp_path: Path, **worker: float) -> WorkerTtsBackend:
    backend = build_tts_backend("piper-worker", PiperSettings(worker=WorkerSettings(**worker)), tmp_path)  # type: ignore[arg-type]
    assert isinstance(backend, WorkerTtsBackend)
    await backend.load()
    return backend


async def test_streams_sentences_and_closes_the_process(tmp_path: Path) -> None:
    backend = await _piper_worker(tmp_path)
    pid = backend.pid
    assert pid is not None and _alive(pid)
    assert backend.model == "en=en_US-joe-medium" and backend.device == "cpu"
    assert await backend.ping() < 1.0
    chunks = [c async for c in backend.synthesize(SynthesisRequest("Hello there. How are you today?", "en"))]
    assert [c.text for c in chunks] == ["Hello there.", "How are you today?"]
    assert all(c.sample_rate == 22050 and _rms(c.samples) > 500 for c in chunks)
    assert 0.4 < chunks[0].duration_s < 3.0
    with pytest.raises(RequestError, match="does not speak 'ru'"):
        async for _ in backend.synthesize(SynthesisRequest("Привет.", "ru")):
            pass
    await backend.close()
    await backend.close()  # twice is fine
    assert not _alive(pid)
    with pytest.raises(BackendError, match="closed"):
        async for _ in backend.synthesize(SynthesisRequest("Hi.", "en")):
            pass


async def test_cancel_mid_stream_frees_the_worker_for_the_next_request(tmp_path: Path) -> None:
    backend = await _piper_worker(tmp_path)
    try:
        pid = backend.pid
        many = " ".join(f"This is sentence number {n}." for n in range(1, 41))  # seconds of work if not stopped
        stream = backend.synthesize(SynthesisRequest(many, "en"))
        first = await anext(stream)
        assert first.text == "This is sentence number 1."
        await stream.aclose()  # the caller barged in
        started = time.monotonic()
        chunks = [c async for c in backend.synthesize(SynthesisRequest("Sorry, go ahead.", "en"))]
        elapsed = time.monotonic() - started
        # only the new request's audio, nothing left over from the cancelled one, and promptly
        assert [c.text for c in chunks] == ["Sorry, go ahead."]
        assert elapsed < 1.5, f"next request took {elapsed:.2f} s after a cancel"
        assert backend.pid == pid  # same worker, not a restart
    finally:
        await backend.close()


async def test_killing_the_worker_mid_stream_is_a_backend_error_with_its_fate(tmp_path: Path) -> None:
    backend = await _piper_worker(tmp_path)
    try:
        stream = backend.synthesize(SynthesisRequest(LONG_TEXT, "en"))
        await anext(stream)
        assert backend.pid is not None
        os.kill(backend.pid, signal.SIGKILL)
        with pytest.raises(BackendError, match="was killed by SIGKILL"):
            async for _ in stream:
                pass
        with pytest.raises(BackendError, match="SIGKILL"):  # and it stays dead for the next caller
            async for _ in backend.synthesize(SynthesisRequest("Hi.", "en")):
                pass
    finally:
        await backend.close()


async def test_chain_fails_over_mid_stream_without_repeating_words(tmp_path: Path) -> None:
    statuses: list[EngineStatus] = []
    worker_holder: list[WorkerTtsBackend] = []

    def build_worker() -> TtsBackend:
        backend = build_tts_backend("piper-worker", PiperSettings(), tmp_path)
        assert isinstance(backend, WorkerTtsBackend)
        worker_holder.append(backend)
        return backend

    synthesizer = TtsEngine(
        [BackendSlot("piper-worker", build_worker), BackendSlot("piper", lambda: build_tts_backend("piper", PiperSettings(), tmp_path))],
        on_status=statuses.append,
        retry_initial_s=60,
    )
    await synthesizer.start()
    try:
        assert synthesizer.status.state is EngineState.READY and synthesizer.status.backend == "piper-worker"
        heard: list[AudioChunk] = []
        async with contextlib.aclosing(synthesizer.synthesize(SynthesisRequest(LONG_TEXT, "en"))) as stream:
            async for chunk in stream:
                heard.append(chunk)
                if len(heard) == 2:
                    pid = worker_holder[0].pid
                    assert pid is not None
                    os.kill(pid, signal.SIGKILL)
        # every sentence exactly once, in order, although the voice changed process mid-reply
        assert [c.text for c in heard if c.text] == SENTENCES
        assert synthesizer.status.state is EngineState.DEGRADED and synthesizer.status.backend == "piper"
        assert any("SIGKILL" in f for f in synthesizer.status.failures)
    finally:
        await synthesizer.close()
    assert worker_holder[0].pid is None


def _script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


async def _load_fake(tmp_path: Path, script: str, **worker: float) -> WorkerTtsBackend:
    backend = WorkerTtsBackend(
        name="fake",
        worker_backend="piper",
        settings_json={},
        languages=frozenset({"en"}),
        worker=WorkerSettings(python=script, **worker),  # type: ignore[arg-type]
    )
    await backend.load()
    return backend


async def test_a_worker_printing_to_stdout_is_rejected_clearly(tmp_path: Path) -> None:
    script = _script(tmp_path, "chatty", "echo 'Loading weights... done'; sleep 30")
    started = time.monotonic()
    with pytest.raises(BackendError, match="malformed frame: bad magic b'Load'"):
        await _load_fake(tmp_path, script)
    assert time.monotonic() - started < 10


async def test_a_crashing_worker_reports_exit_code_and_stderr(tmp_path: Path) -> None:
    script = _script(tmp_path, "crash", "echo 'RuntimeError: CUDA error: out of memory' >&2; exit 7")
    with pytest.raises(BackendError, match="exited with code 7; stderr tail: RuntimeError: CUDA error: out of memory"):
        await _load_fake(tmp_path, script)


async def test_a_silent_worker_times_out_and_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = _script(tmp_path, "mute", f"echo $$ > {pid_file}; exec sleep 60")
    with pytest.raises(BackendError, match="not ready within 0.5 s"):
        await _load_fake(tmp_path, script, start_timeout_s=0.5, stop_timeout_s=0.5)
    pid = int(pid_file.read_text())
    for _ in range(50):
        if not _alive(pid):
            break
        await asyncio.sleep(0.05)
    assert not _alive(pid)


async def test_missing_interpreter_and_missing_backend_library_are_unavailable(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="cannot start the worker"):
        await _load_fake(tmp_path, str(tmp_path / "no-such-python"))
    broken_voice = PiperSettings(voices={"en": str(tmp_path / "missing.onnx")})
    backend = build_tts_backend("piper-worker", broken_voice, tmp_path)
    with pytest.raises(BackendUnavailable, match="Piper voice file missing"):
        await backend.load()
    await backend.close()


async def _drain(stream: AsyncIterator[AudioChunk]) -> None:
    async for _ in stream:
        pass


async def test_a_hung_worker_mid_stream_is_killed_after_the_chunk_timeout(tmp_path: Path) -> None:
    backend = await _piper_worker(tmp_path, chunk_timeout_s=0.5)
    try:
        pid = backend.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # frozen, as a wedged CUDA call would be
        with pytest.raises(BackendError, match="no audio from the worker for 0.5 s"):
            await _drain(backend.synthesize(SynthesisRequest("Hello.", "en")))
        await asyncio.sleep(0.1)
        assert not _alive(pid) or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    finally:
        await backend.close()
