"""A real shared library holding AVX-512 instructions, compiled by gcc in the test (as a native llama.cpp build is)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

_SOURCE = """\
#include <immintrin.h>
void add16(const float *a, const float *b, float *out) {
    _mm512_storeu_ps(out, _mm512_add_ps(_mm512_loadu_ps(a), _mm512_loadu_ps(b)));
}
"""


def build_avx512_library(directory: Path, name: str = "libggml-cpu.so") -> Path:
    """``directory/name``: three zmm instructions (load, add, store); skips the test without gcc."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed (scripts/bootstrap needs it to compile llama-cpp-python)")
    source = directory / "avx512.c"
    source.write_text(_SOURCE)
    library = directory / name
    subprocess.run([gcc, "-O2", "-mavx512f", "-shared", "-fPIC", str(source), "-o", str(library)],
                   check=True, capture_output=True, timeout=60)
    return library
