"""llama-cpp-python is built for a portable CPU baseline, not for the machine that compiles it.

The box's image was built on a machine with AVX-512 and its llama.cpp server died of SIGILL on a
CPU without it (issue 22). One file, ``scripts/llama-cpp-cmake-args``, names the baseline; bootstrap
and image/build-rootfs both build with it. Here: the installed library carries no instruction beyond
that baseline (objdump), the scanner does see AVX-512 where there is some, and the real llama.cpp
engine starts and answers under qemu-user on a CPU model without AVX-512 (where a library with
AVX-512 instructions dies of SIGILL).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from engines.llm.interface import ChatMessage, ChatRequest
from engines.llm.llama_cpp_backend import LlamaCppServerBackend
from engines.llm.llama_cpu_build import baseline_of, installed_library, scan_library
from tests.engines.llm_helpers import LLAMA
from tests.support.avx512_library import build_avx512_library

REPO = Path(__file__).resolve().parent.parent
ARGS_FILE = REPO / "scripts" / "llama-cpp-cmake-args"
BOOTSTRAP = REPO / "scripts" / "bootstrap"
BUILD_ROOTFS = REPO / "image" / "build-rootfs"
# Intel Haswell as qemu 7.2's TCG runs it: AVX2, FMA, F16C, BMI2, no AVX-512. The features TCG cannot
# provide are turned off so that qemu does not warn about each of them on every start.
QEMU_CPU = "Haswell,-pcid,-x2apic,-tsc-deadline,-hle,-invpcid,-rtm"


def _cmake_args() -> str:
    return " ".join(shlex.split(ARGS_FILE.read_text(), comments=True))


def _objdump() -> None:
    if shutil.which("objdump") is None:
        pytest.skip("objdump is not installed (apt-get install binutils; scripts/bootstrap --test does)")


# ---------------------------------------------------------------- one home for the options


def test_the_baseline_is_portable() -> None:
    args = _cmake_args()
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_AVX512=OFF" in args
    assert baseline_of(args) == {"avx", "avx2", "fma", "f16c", "bmi2"}
    with pytest.raises(ValueError, match="GGML_NATIVE"):
        baseline_of("-DGGML_AVX2=ON")  # native tuning left on: the build machine's CPU again


def test_bootstrap_and_the_image_build_with_the_one_args_file() -> None:
    """Both read scripts/llama-cpp-cmake-args; neither holds a copy of the options nor trusts pip's wheel cache."""
    for script in (BOOTSTRAP, BUILD_ROOTFS):
        text = script.read_text()
        assert "scripts/llama-cpp-cmake-args" in text, script
        assert "sed 's/#.*//'" in text and re.search(r'CMAKE_ARGS="?\$LLAMA_CMAKE_ARGS', text), script
        assert not re.search(r"-DGGML_\w+=", text), f"{script} holds its own llama.cpp options"
        assert "--no-cache-dir" in text, script  # pip's cache keys wheels by the sdist, not by CMAKE_ARGS
        assert "engines.llm.llama_cpu_build --baseline" in text, script  # the result is checked
    bootstrap = BOOTSTRAP.read_text()
    # The venv's llama build has its own stamp over the pin and the options: changing either rebuilds it.
    assert re.search(r'llama_stamp=.*\$LLAMA_PIN.*\$LLAMA_CMAKE_ARGS', bootstrap)
    assert "--force-reinstall" in bootstrap
    assert "qemu-user" in bootstrap and "binutils" in bootstrap  # what these tests need, for CI


def test_the_scanner_sees_avx512_where_there_is_some(tmp_path: Path) -> None:
    """The check below can fail: a library with zmm instructions is counted as needing avx512f."""
    _objdump()
    scan = scan_library(build_avx512_library(tmp_path))
    assert scan.counts["avx512f"] == 3 and "avx512f" in scan.needs


# ---------------------------------------------------------------- the installed library


def test_the_installed_library_carries_nothing_beyond_the_baseline() -> None:
    _objdump()
    library = installed_library()
    assert library is not None and library.exists(), "llama-cpp-python is not installed (scripts/bootstrap)"
    started = time.monotonic()
    scan = scan_library(library)
    print(f"\n{library.name}: {scan.summary()} ({time.monotonic() - started:.1f} s)")
    assert scan.counts["avx512f"] == 0, f"{library} holds AVX-512: built natively, not with {ARGS_FILE.name}"
    assert scan.needs <= baseline_of(_cmake_args()), scan.summary()
    assert scan.counts["avx2"] > 1000  # the baseline is used: the AVX2 kernels are there
    for other in sorted(library.parent.glob("lib*.so")):  # libllama, libggml, libggml-base: generic x86-64
        if other.name != library.name:
            assert scan_library(other).counts["avx512f"] == 0, other


# ---------------------------------------------------------------- on a CPU without AVX-512


def _qemu_python(tmp_path: Path) -> Path:
    """An interpreter the backend can be given: this venv's python, run by qemu-user as a Haswell."""
    if shutil.which("qemu-x86_64") is None:
        pytest.skip("qemu-user is not installed (apt-get install qemu-user; scripts/bootstrap --test does)")
    wrapper = tmp_path / "python-on-haswell"
    wrapper.write_text(f"#!/bin/sh\nexec qemu-x86_64 -cpu {QEMU_CPU} {shlex.quote(sys.executable)} \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper


def test_the_qemu_cpu_model_has_no_avx512(tmp_path: Path) -> None:
    """Without this, starting under qemu would prove nothing: AVX-512 code dies of SIGILL there."""
    if shutil.which("qemu-x86_64") is None:
        pytest.skip("qemu-user is not installed (apt-get install qemu-user; scripts/bootstrap --test does)")
    library = build_avx512_library(tmp_path)
    code = ("import ctypes, sys; lib = ctypes.CDLL(sys.argv[1]); a = (ctypes.c_float * 16)(*range(16)); "
            "out = (ctypes.c_float * 16)(); lib.add16(a, a, out); print(out[15])")
    native = subprocess.run([sys.executable, "-c", code, str(library)], capture_output=True, text=True, timeout=60)
    if native.returncode != 0:
        pytest.skip(f"this machine's CPU has no AVX-512 itself: {native.stderr.strip()[-200:]}")
    assert native.stdout.strip() == "30.0"
    emulated = subprocess.run(["qemu-x86_64", "-cpu", QEMU_CPU, sys.executable, "-c", code, str(library)],
                              capture_output=True, text=True, timeout=120)
    assert emulated.returncode == -4, (emulated.returncode, emulated.stderr[-500:])  # SIGILL


@pytest.mark.slow
@pytest.mark.timeout(480)
async def test_the_llama_engine_starts_and_answers_on_a_cpu_without_avx512(tmp_path: Path) -> None:
    """The real server (llama_cpp.server with SmolLM2-135M) under qemu -cpu Haswell: up, and a few tokens out."""
    python = _qemu_python(tmp_path)
    # qemu's TCG is ~10x slower than the CPU: the first token takes ~25 s idle, more on a loaded machine
    backend = LlamaCppServerBackend(replace(LLAMA, python=str(python), max_restarts=0, startup_timeout_s=240,
                                            idle_timeout_s=200), tmp_path / "models")
    started = time.monotonic()
    try:
        await backend.load()
        loaded = time.monotonic() - started
        request = ChatRequest(messages=(ChatMessage("user", "Hi"),), max_tokens=3, temperature=0.0)
        deltas = [delta async for delta in backend.stream_chat(request)]
    finally:
        await backend.close()
    print(f"\nllama.cpp server under qemu {QEMU_CPU.split(',')[0]}: ready in {loaded:.1f} s, "
          f"answered in {time.monotonic() - started:.1f} s")
    assert "".join(d.text for d in deltas).strip(), deltas
    assert deltas[-1].finish_reason in ("stop", "length")
