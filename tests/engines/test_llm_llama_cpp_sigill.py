"""A llama.cpp server that dies of SIGILL says so in plain words: the build's CPU instructions, and what to do.

The "server" here is a real process that kills itself with SIGILL, started through the backend's own
start path (``LlamaCppSettings.python`` names the interpreter the backend runs ``-m llama_cpp.server``
with), and through ``ServerProcess`` for a server that was up and then died.
"""

from __future__ import annotations

import signal
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from engines.backend import BackendError
from engines.llm.llama_cpp_backend import SIGILL_HINT, LlamaCppServerBackend
from engines.llm.server_process import ServerCommand, ServerProcess, describe_exit
from tests.engines.llm_helpers import LLAMA, wait_until


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


def test_exits_are_described_in_words() -> None:
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(-signal.SIGILL) == "died with SIGILL (illegal instruction)"
    assert describe_exit(-signal.SIGKILL) == "died with SIGKILL (killed)"
    assert describe_exit(-200) == "died with signal 200"


async def test_a_server_dying_of_sigill_at_start_names_the_cpu_build(models_dir: Path, tmp_path: Path) -> None:
    """What the box showed under qemu ("exited with code -4 while starting: no output"), now in words."""
    python = _script(tmp_path, "python-with-avx512-llama", """\
        import os, signal, sys
        print("llama_cpp.server starting", flush=True)
        os.kill(os.getpid(), signal.SIGILL)
    """)
    backend = LlamaCppServerBackend(replace(LLAMA, python=str(python), max_restarts=0), models_dir)
    with pytest.raises(BackendError) as caught:
        await backend.load()
    message = str(caught.value)
    assert message.startswith("llama.cpp-server died with SIGILL (illegal instruction) while starting: "), message
    assert SIGILL_HINT in message and "CPU instructions this processor lacks" in message
    assert "scripts/bootstrap" in message and "secretary doctor" in message
    assert "llama_cpp.server starting" in message  # its output is still there
    assert "code -4" not in message
    assert backend.process is None


async def test_a_server_dying_of_sigill_later_gives_the_same_reason(tmp_path: Path) -> None:
    """Up and answering, then SIGILL (a kernel path first taken by a request): the failure says why."""
    server = _script(tmp_path, "server-then-sigill", """\
        import http.server, os, signal, sys, threading

        class Ready(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.end_headers()
                threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGILL)).start()

            def log_message(self, *args):
                pass

        http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ready).serve_forever()
    """)

    async def probe(base_url: str) -> bool:
        try:
            async with aiohttp.ClientSession() as session, session.get(base_url + "/") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    process = ServerProcess("llama.cpp-server", lambda port: ServerCommand((str(server), str(port)), {}), probe,
                            max_restarts=0, exit_hints={-signal.SIGILL: SIGILL_HINT})
    try:
        await process.start()  # the probe's request arms the SIGILL
        assert await wait_until(lambda: not process.ready, 10), "the server did not die of its SIGILL"
        with pytest.raises(BackendError) as caught:
            await process.wait_ready(10.0)
    finally:
        await process.stop()
    message = str(caught.value)
    assert message.startswith("llama.cpp-server died with SIGILL (illegal instruction): " + SIGILL_HINT), message
    assert "gave up after 0 restarts" in message

