"""Which CPU instructions the installed llama.cpp build needs, and whether this processor has them.

llama-cpp-python compiles llama.cpp on the machine that installs it; all of its processor-specific
code is in ggml's CPU backend, ``llama_cpp/lib/libggml-cpu.so``. Compiled with llama.cpp's default
native tuning it holds the build machine's instructions (AVX-512 on a recent build server), and a
box without them kills the llama.cpp server with SIGILL. ``scripts/llama-cpp-cmake-args`` names the
portable baseline both ``scripts/bootstrap`` and ``image/build-rootfs`` build with.

``scan_library`` disassembles the library (binutils' objdump) and counts its instructions by the
x86 extension each needs, named as ``/proc/cpuinfo`` names the flag (``avx2``, ``avx512f``...).
The build scripts write that scan next to the venv (``llama-cpu-build.json``, keyed by the
library's SHA-256) because the box has no objdump; ``check_cpu`` compares it with this CPU's flags
for ``secretary doctor``. ``python -m engines.llm.llama_cpu_build`` scans, prints the counts,
writes the file and fails when the build needs more than the baseline.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
BUILD_INFO_NAME = "llama-cpu-build.json"
CPU_LIBRARY_NAME = "libggml-cpu.so"
# ggml's CMake switches for x86 extensions and the /proc/cpuinfo flag of each.
CMAKE_FLAG = {"GGML_AVX": "avx", "GGML_AVX2": "avx2", "GGML_FMA": "fma", "GGML_F16C": "f16c",
              "GGML_BMI2": "bmi2", "GGML_AVX512": "avx512f"}
SCAN_TIMEOUT_S = 120.0

# Instructions by what they need (the most demanding class wins). AVX-512: any zmm register, an
# opmask, the upper 16 vector registers, or an EVEX-only mnemonic on xmm/ymm (AVX512VL).
_AVX512_OPERAND = re.compile(r"%zmm|%k[0-7]\b|\{%k[0-7]\}|%[xy]mm(1[6-9]|2\d|3[01])\b")
_AVX512_MNEMONIC = re.compile(
    r"^(vpternlog|vpermt2|vpermi2|vpcompress|vpexpand|vcompress|vexpand|vpconflict|vplzcnt|vprol|vpror|"
    r"vrange|vreduce|vgetexp|vgetmant|vfixupimm|vscalef|vrcp14|vrsqrt14|vdbpsadbw|vcvtne2ps2bf16|vdpbf16ps|"
    r"vpmov(db|dw|qb|qd|qw|wb|sdb|sdw|sqb|sqd|sqw|swb|usdb|usdw|usqb|usqd|usqw|uswb|m2|b2m|w2m|d2m|q2m)\b|"
    r"vcvt\w*(2u?qq|u?qq2)|vbroadcast[if](32x[248]|64x[24])|vextract[if](32x[48]|64x[24])|"
    r"vinsert[if](32x[48]|64x[24])|valign[dq]|vpdpbusds?|vpdpwssds?)"
)
_AVX2_MNEMONIC = re.compile(
    r"^(vpbroadcast|vbroadcasti128|vinserti128|vextracti128|vperm2i128|vpermq|vpermd|vpermps|vpermpd|"
    r"vpgather|vgather|vpmaskmov|vpsllv|vpsrlv|vpsrav|vpblendd)"
)
_AVX1_YMM_VP = re.compile(r"^(vpermilps|vpermilpd|vperm2f128|vptest)")
_FMA_MNEMONIC = re.compile(r"^vf(n?m(add|sub)|maddsub|msubadd)")
_F16C_MNEMONIC = re.compile(r"^vcvt(ph2ps|ps2ph)\b")
_BMI2_MNEMONIC = re.compile(r"^(shlx|shrx|sarx|rorx|pdep|pext|mulx|bzhi)\b")
EXTENSIONS = ("avx512f", "avx2", "fma", "f16c", "avx", "bmi2")


class ScanUnavailable(RuntimeError):
    """The library cannot be disassembled here (no objdump); the message says what to install."""


@dataclass(frozen=True)
class InstructionScan:
    """How many instructions of a library need each x86 extension (cpuinfo flag names)."""

    library: str
    sha256: str
    counts: dict[str, int]

    @property
    def needs(self) -> frozenset[str]:
        return frozenset(ext for ext, count in self.counts.items() if count)

    def summary(self) -> str:
        return ", ".join(f"{ext} {self.counts.get(ext, 0)}" for ext in EXTENSIONS)


def classify(mnemonic: str, operands: str) -> str | None:
    """The extension an instruction needs (``avx512f``, ``avx2``, ``fma``, ``f16c``, ``avx``, ``bmi2``) or None."""
    if mnemonic == "{vex}":  # AVX-VNNI's VEX form: "{vex} vpdpbusd"
        return "avx_vnni"
    if _AVX512_OPERAND.search(operands) or _AVX512_MNEMONIC.match(mnemonic):
        return "avx512f"
    if _BMI2_MNEMONIC.match(mnemonic):
        return "bmi2"
    if not mnemonic.startswith("v"):
        return None
    if _AVX2_MNEMONIC.match(mnemonic) or (mnemonic.startswith("vp") and "%ymm" in operands
                                          and not _AVX1_YMM_VP.match(mnemonic)):
        return "avx2"
    if _FMA_MNEMONIC.match(mnemonic):
        return "fma"
    if _F16C_MNEMONIC.match(mnemonic):
        return "f16c"
    return "avx"


def scan_library(path: Path) -> InstructionScan:
    """Disassemble ``path`` and count its instructions by extension (about a second for 1.5 MB)."""
    objdump = shutil.which("objdump")
    if objdump is None:
        raise ScanUnavailable("objdump is not installed (apt-get install binutils)")
    counts = dict.fromkeys(EXTENSIONS, 0)
    with subprocess.Popen([objdump, "-d", "--no-show-raw-insn", str(path)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, errors="replace") as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            parts = line.split("\t")  # "  addr:\tmnemonic operands"
            if len(parts) < 2 or not parts[0].rstrip().endswith(":"):
                continue
            words = parts[-1].split(None, 1)
            if not words:
                continue
            ext = classify(words[0], words[1] if len(words) > 1 else "")
            if ext is not None:
                counts[ext] = counts.get(ext, 0) + 1
        stderr = proc.stderr.read() if proc.stderr else ""
    if proc.returncode != 0:
        raise ScanUnavailable(f"objdump could not read {path}: {stderr.strip()[:300]}")
    return InstructionScan(str(path), _sha256(path), counts)


def baseline_of(cmake_args: str) -> frozenset[str]:
    """The cpuinfo flags a non-native build may use, from its CMake options (``-DGGML_AVX2=ON``...)."""
    options: dict[str, str] = {}
    for word in shlex.split(cmake_args, comments=True):
        match = re.fullmatch(r"-D(\w+)(?::\w+)?=(.*)", word)
        if match:
            options[match.group(1)] = match.group(2).upper()
    if options.get("GGML_NATIVE") not in ("OFF", "0", "FALSE", "NO"):
        raise ValueError("the CMake options must turn GGML_NATIVE off, or the build takes the build machine's CPU")
    return frozenset(flag for option, flag in CMAKE_FLAG.items() if options.get(option) in ("ON", "1", "TRUE", "YES"))


def read_cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """This processor's feature flags (the first ``flags`` line of /proc/cpuinfo)."""
    for line in cpuinfo.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def installed_library() -> Path | None:
    """``libggml-cpu.so`` of the llama_cpp package this interpreter imports (None: not installed)."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "lib" / CPU_LIBRARY_NAME


def build_info_path() -> Path:
    """Where the build scripts leave the scan: the venv's root (this interpreter's ``sys.prefix``)."""
    return Path(sys.prefix) / BUILD_INFO_NAME


def write_build_info(scan: InstructionScan, cmake_args: str, path: Path) -> None:
    record = {"library": scan.library, "sha256": scan.sha256, "counts": scan.counts, "cmake_args": cmake_args}
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)


def read_build_info(library: Path, path: Path) -> InstructionScan | None:
    """The recorded scan of ``library``, if the file is there and describes this very library."""
    try:
        record = json.loads(path.read_text())
        sha, counts = str(record["sha256"]), {str(k): int(v) for k, v in record["counts"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return InstructionScan(str(library), sha, counts) if sha == _sha256(library) else None


def check_cpu(library: Path | None = None, flags: frozenset[str] | None = None,
              info_path: Path | None = None) -> tuple[str, str]:
    """``(level, detail)`` for doctor: does this CPU have every extension the llama.cpp build uses?"""
    library = library or installed_library()
    if library is None:
        return "OK", "llama-cpp-python is not installed in this venv (no local LLM on the CPU)"
    if not library.exists():
        variants = sorted(p.name for p in library.parent.glob("libggml-cpu-*.so"))
        if variants:
            return "WARN", (f"{library.parent} holds CPU variants ({', '.join(variants)}) but no {library.name}: "
                            "llama-cpp-python does not load backend variants; rebuild with scripts/bootstrap")
        return "FAIL", f"{library} is missing: reinstall llama-cpp-python (scripts/bootstrap)"
    flags = read_cpu_flags() if flags is None else flags
    scan = read_build_info(library, info_path or build_info_path())
    if scan is None:
        try:
            scan = scan_library(library)
        except ScanUnavailable as exc:
            return "WARN", f"cannot tell which CPU instructions {library.name} uses: {exc}"
    missing = sorted(scan.needs - flags)
    if missing:
        return "FAIL", (f"{library.name} uses {', '.join(missing)} ({scan.summary()} instructions), which this CPU "
                        "lacks: the llama.cpp server would die with SIGILL; rebuild llama-cpp-python for the "
                        "portable baseline (scripts/bootstrap; on the box, image/build-rootfs)")
    return "OK", f"{library.name} needs {', '.join(sorted(scan.needs)) or 'no vector extensions'}; this CPU has them"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engines.llm.llama_cpu_build", description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, metavar="ARGS_FILE",
                        help="fail when the library needs more than these CMake options allow")
    parser.add_argument("--write", action="store_true", help=f"record the scan in {build_info_path()}")
    parser.add_argument("--library", type=Path, help="the library to scan (default: the installed llama_cpp's)")
    args = parser.parse_args(argv)
    library = args.library or installed_library()
    if library is None or not library.exists():
        print(f"llama_cpu_build: no {CPU_LIBRARY_NAME} to scan ({library or 'llama_cpp not installed'})", file=sys.stderr)
        return 1
    try:
        scan = scan_library(library)
    except ScanUnavailable as exc:
        print(f"llama_cpu_build: {exc}", file=sys.stderr)
        return 1
    print(f"{library}: {scan.summary()}")
    cmake_args = args.baseline.read_text() if args.baseline else ""
    if args.baseline:
        allowed = baseline_of(cmake_args)
        extra = sorted(scan.needs - allowed)
        if extra:
            print(f"llama_cpu_build: {library.name} uses {', '.join(extra)}, beyond the baseline of {args.baseline} "
                  f"({', '.join(sorted(allowed))}): it was built for another CPU (a wheel from a cache or wheelhouse?)",
                  file=sys.stderr)
            return 1
    if args.write:
        write_build_info(scan, " ".join(shlex.split(cmake_args, comments=True)), build_info_path())
    return 0


if __name__ == "__main__":
    sys.exit(main())
