"""A TTS worker process: ``python -m engines.tts.worker --backend piper|xtts``.

The daemon starts one of these per worker backend, with whatever interpreter
that backend needs (XTTS runs under its own venv's python with torch + CUDA +
coqui-tts). It speaks ``engines.tts.worker_protocol`` on stdin/stdout: says
``hello``, loads the backend named in the ``load`` message, answers ``ready``,
then streams one synthesis at a time while still reading ``cancel`` and
``ping`` (the synthesis runs in a thread; the main thread only reads frames).

Before anything else the real stdout is taken for the protocol and fd 1 is
pointed at stderr, so a library that prints (coqui-tts does) cannot corrupt a
frame. The worker exits when its stdin closes (the daemon died or closed it),
on ``shutdown``, after a failed ``load`` (code 3) and on a malformed frame
(code 2, after an ``error`` saying what was wrong).

Only stdlib, numpy and stdlib-only ``engines`` modules are imported at the top;
the backend library is imported when ``load`` arrives.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO, Protocol

from engines.backend import BackendUnavailable
from engines.fallback_chain import RequestError
from engines.tts.interface import AudioChunk, SynthesisRequest
from engines.tts.worker_protocol import (
    DAEMON_MESSAGES,
    PROTOCOL_VERSION,
    Message,
    ProtocolError,
    audio_message,
    encode,
    error_message,
    read_message,
)

log = logging.getLogger("secretary.engines.tts.worker")

BACKENDS = ("piper", "xtts")
EXIT_OK = 0
EXIT_PROTOCOL = 2
EXIT_LOAD_FAILED = 3


class ChunkSource(Protocol):
    """The blocking synthesizer a worker hosts (PiperVoices, XttsInference)."""

    def load(self) -> dict[str, Any]: ...

    def stream(self, request: SynthesisRequest, stop: threading.Event) -> Iterator[AudioChunk]: ...

    def close(self) -> None: ...


def build_source(backend: str, settings: dict[str, Any]) -> ChunkSource:
    if backend == "piper":
        from engines.tts.piper_voices import PiperVoices
        from engines.tts.settings import PiperSettings

        return PiperVoices(PiperSettings.from_json(settings))
    if backend == "xtts":
        from engines.tts.settings import XttsSettings
        from engines.tts.xtts_inference import XttsInference

        return XttsInference(XttsSettings.from_json(settings))
    raise BackendUnavailable(f"unknown worker backend {backend!r} (known: {', '.join(BACKENDS)})")


class _Job:
    def __init__(self, request_id: int) -> None:
        self.id = request_id
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None


class Worker:
    def __init__(self, backend: str, inp: BinaryIO, out: BinaryIO) -> None:
        self._backend = backend
        self._in = inp
        self._out = out
        self._write_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._source: ChunkSource | None = None
        self._job: _Job | None = None

    def send(self, message: Message) -> None:
        frame = encode(message)
        with self._write_lock:
            self._out.write(frame)
            self._out.flush()

    def run(self) -> int:
        self.send(Message("hello", {"protocol": PROTOCOL_VERSION, "pid": os.getpid(), "python": sys.executable}))
        try:
            while True:
                try:
                    message = read_message(self._in)
                except ProtocolError as exc:
                    log.error("%s", exc)
                    self._send_quietly(error_message(None, str(exc), "protocol"))
                    return EXIT_PROTOCOL
                if message is None:
                    log.info("stdin closed: exiting")
                    return EXIT_OK
                if message.type not in DAEMON_MESSAGES:
                    text = f"malformed frame: {message.type!r} is not a message the daemon sends"
                    self._send_quietly(error_message(None, text, "protocol"))
                    return EXIT_PROTOCOL
                code = self._handle(message)
                if code is not None:
                    return code
        except (BrokenPipeError, ConnectionResetError):
            log.info("stdout closed: exiting")
            return EXIT_OK
        finally:
            self._stop_job()
            if self._source is not None:
                self._source.close()

    def _handle(self, message: Message) -> int | None:
        if message.type == "ping":
            self.send(Message("pong", {"seq": message["seq"]}))
        elif message.type == "load":
            return self._load(message)
        elif message.type == "synthesize":
            self._start(message["id"], message["request"])
        elif message.type == "cancel":
            with self._state_lock:
                job = self._job
            if job is not None and job.id == message["id"]:
                job.stop.set()
        elif message.type == "shutdown":
            return EXIT_OK
        return None

    def _load(self, message: Message) -> int | None:
        if self._source is not None:
            self.send(error_message(None, "already loaded", "protocol"))
            return None
        if message["backend"] != self._backend:
            self.send(error_message(None, f"this worker runs {self._backend!r}, not {message['backend']!r}", "protocol"))
            return EXIT_LOAD_FAILED
        try:
            source = build_source(self._backend, message["settings"])
            info = source.load()
        except BackendUnavailable as exc:
            log.error("cannot load %s: %s", self._backend, exc)
            self.send(error_message(None, str(exc), "unavailable"))
            return EXIT_LOAD_FAILED
        except Exception as exc:  # noqa: BLE001 - reported to the daemon, then exit
            log.exception("loading %s failed", self._backend)
            self.send(error_message(None, f"{type(exc).__name__}: {exc}", "backend"))
            return EXIT_LOAD_FAILED
        self._source = source
        self.send(Message("ready", {"info": info}))
        return None

    def _start(self, request_id: int, request_json: dict[str, Any]) -> None:
        if self._source is None:
            self.send(error_message(request_id, "synthesize before load", "protocol"))
            return
        with self._state_lock:
            busy = self._job
            if busy is None:
                job = _Job(request_id)
                self._job = job
        if busy is not None:
            self.send(error_message(request_id, f"busy with request {busy.id}", "protocol"))
            return
        job.thread = threading.Thread(target=self._serve, args=(job, request_json), name=f"tts-{request_id}", daemon=True)
        job.thread.start()

    def _serve(self, job: _Job, request_json: dict[str, Any]) -> None:
        final: Message
        try:
            request = SynthesisRequest.from_json(request_json)
        except ValueError as exc:
            self._finish(job, error_message(job.id, f"bad request: {exc}", "request"))
            return
        try:
            assert self._source is not None
            for chunk in self._source.stream(request, job.stop):
                if job.stop.is_set():
                    break
                self.send(audio_message(job.id, chunk.samples, chunk.sample_rate, chunk.text))
            final = Message("done", {"id": job.id, "cancelled": job.stop.is_set()})
        except RequestError as exc:
            final = error_message(job.id, str(exc), "request")
        except BackendUnavailable as exc:
            final = error_message(job.id, str(exc), "unavailable")
        except (BrokenPipeError, ConnectionResetError):
            return
        except Exception as exc:  # noqa: BLE001 - the daemon decides (fails over)
            log.exception("synthesis %d failed", job.id)
            final = error_message(job.id, f"{type(exc).__name__}: {exc}", "backend")
        self._finish(job, final)

    def _finish(self, job: _Job, final: Message) -> None:
        # Free the slot before answering: once the daemon sees done/error it may send the next request.
        with self._state_lock:
            if self._job is job:
                self._job = None
        self._send_quietly(final)

    def _stop_job(self) -> None:
        with self._state_lock:
            job = self._job
        if job is not None:
            job.stop.set()
            if job.thread is not None:
                job.thread.join(timeout=5)

    def _send_quietly(self, message: Message) -> None:
        try:
            self.send(message)
        except (BrokenPipeError, ConnectionResetError, ValueError, OSError):
            pass


def claim_stdout() -> BinaryIO:
    """The protocol's private copy of stdout; fd 1 and ``sys.stdout`` then point at stderr."""
    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(protocol_fd, "wb")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engines.tts.worker", description=__doc__.split("\n")[0])
    parser.add_argument("--backend", required=True, choices=BACKENDS)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    out = claim_stdout()
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format=f"tts-worker[{args.backend} %(process)d] %(levelname)s %(name)s: %(message)s",
    )
    worker = Worker(args.backend, sys.stdin.buffer, out)
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
