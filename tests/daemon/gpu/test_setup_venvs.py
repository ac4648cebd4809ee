"""The engine venv step for real: ``python -m venv`` + ``pip install -c`` against a local PEP 503 index served over
HTTP (tiny wheels built here, named like the pinned packages), the stamp that skips a current venv, a changed
constraint file that reinstalls, a missing package that stops with what to do, and a wheel directory (a stick)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from daemon.gpu.engine_venvs import (
    EngineVenv,
    VenvError,
    ensure_venv,
    normalize,
    parse_constraints,
    venv_root_of,
)

HEADER = "# @install: vllm\n# @python: >=3.10,<3.14\n# @cuda-driver: 12.0\n# @disk-gib: 1\n"
PACKAGES = [("vllm", "0.19.1", ["torch"]), ("torch", "2.10.0", []), ("torch", "2.9.0", [])]


def make_wheel(directory: Path, name: str, version: str, requires: list[str]) -> Path:
    """A real (tiny) wheel: one module, METADATA, WHEEL and a RECORD with hashes."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f"__version__ = {version!r}\n",
        f"{dist_info}/METADATA": "Metadata-Version: 2.1\n" f"Name: {name}\nVersion: {version}\n"
                                 + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist_info}/RECORD"] = "\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n"
    target = directory / f"{module}-{version}-py3-none-any.whl"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    target.write_bytes(buffer.getvalue())
    return target


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("wheels")
    for name, version, requires in PACKAGES:
        make_wheel(directory, name, version, requires)
    return directory


@pytest.fixture(scope="module")
def index_url(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PEP 503 simple index of the wheels, served by http.server on loopback."""
    root = tmp_path_factory.mktemp("index")
    for wheel in wheels.glob("*.whl"):
        project = root / "simple" / normalize(wheel.name.split("-")[0])
        project.mkdir(parents=True, exist_ok=True)
        (project / wheel.name).write_bytes(wheel.read_bytes())
    for project in (root / "simple").iterdir():
        links = "".join(f'<a href="{w.name}">{w.name}</a>\n' for w in sorted(project.glob("*.whl")))
        (project / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        pass


@pytest.fixture(autouse=True)
def _isolated_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    """pip reads only what a test gives it: no machine-wide config, find-links or constraints."""
    for key in list(os.environ):
        if key.startswith("PIP_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)


def _constraints(tmp_path: Path, *pins: str) -> Path:
    path = tmp_path / "constraints-vllm.txt"
    path.write_text(HEADER + "".join(f"{pin}\n" for pin in pins))
    return path


def _installed(venv: EngineVenv) -> dict[str, str]:
    script = "import importlib.metadata as m, json; print(json.dumps({d.metadata['Name']: d.version " \
             "for d in m.distributions()}))"
    return json.loads(subprocess.run([str(venv.python), "-c", script], capture_output=True, text=True,
                                     check=True).stdout)


def _venv(tmp_path: Path, constraints: Path) -> EngineVenv:
    return EngineVenv("vLLM", tmp_path / "opt" / "vllm", parse_constraints(constraints))


def test_the_venv_gets_the_pinned_versions_and_a_rerun_is_skipped(
        tmp_path: Path, index_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", index_url)  # pip's own variable, not an argument
    venv = _venv(tmp_path, _constraints(tmp_path, "vllm==0.19.1", "torch==2.10.0"))
    out = io.StringIO()
    assert ensure_venv(venv, out=out) is True
    installed = _installed(venv)
    assert installed["vllm"] == "0.19.1" and installed["torch"] == "2.10.0"
    assert venv.stamp.read_text().split()[0] == venv.constraints.digest
    assert f"PIP_INDEX_URL={index_url}" in out.getvalue()

    stamp_mtime = venv.stamp.stat().st_mtime_ns
    again = io.StringIO()
    assert ensure_venv(venv, out=again) is False
    assert "skipped" in again.getvalue() and "pip" not in again.getvalue()
    assert venv.stamp.stat().st_mtime_ns == stamp_mtime


def test_a_changed_constraint_file_installs_again(tmp_path: Path, index_url: str) -> None:
    constraints = _constraints(tmp_path, "vllm==0.19.1", "torch==2.10.0")
    assert ensure_venv(_venv(tmp_path, constraints), index_url=index_url, out=io.StringIO())
    _constraints(tmp_path, "vllm==0.19.1", "torch==2.9.0")
    venv = _venv(tmp_path, constraints)  # read again: a new digest
    assert not venv.is_current()
    assert ensure_venv(venv, index_url=index_url, out=io.StringIO()) is True
    assert _installed(venv)["torch"] == "2.9.0"
    assert venv.is_current()


def test_a_package_the_index_lacks_stops_with_what_to_do(tmp_path: Path, index_url: str) -> None:
    venv = _venv(tmp_path, _constraints(tmp_path, "vllm==0.99.0", "torch==2.10.0"))
    with pytest.raises(VenvError) as caught:
        ensure_venv(venv, index_url=index_url, out=io.StringIO())
    message = str(caught.value)
    assert "vllm==0.99.0" in message  # pip's own words about the pin it could not find
    assert "PIP_INDEX_URL" in message and "run `secretary gpu setup` again" in message
    assert not venv.stamp.exists()
    assert venv.python.exists()  # the venv itself stays: the next run resumes with pip alone


def test_wheels_from_a_directory_with_no_index(tmp_path: Path, wheels: Path) -> None:
    venv = _venv(tmp_path, _constraints(tmp_path, "vllm==0.19.1", "torch==2.9.0"))
    assert ensure_venv(venv, find_links=wheels, out=io.StringIO())
    assert _installed(venv)["torch"] == "2.9.0"


def test_dry_run_prints_the_commands_and_touches_nothing(tmp_path: Path, index_url: str) -> None:
    venv = _venv(tmp_path, _constraints(tmp_path, "vllm==0.19.1", "torch==2.10.0"))
    out = io.StringIO()
    assert ensure_venv(venv, python="/usr/bin/python3.11", index_url=index_url, dry_run=True, out=out) is True
    text = out.getvalue()
    assert f"/usr/bin/python3.11 -m venv {venv.path}" in text
    assert f"{venv.python} -m pip install" in text and f"-c {venv.constraints.path}" in text
    assert f"--index-url {index_url}" in text and str(venv.stamp) in text
    assert not (tmp_path / "opt").exists()


def test_constraint_file_header_is_required_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_text("vllm==0.19.1\n")
    with pytest.raises(VenvError, match="lacks # @install:, # @python:, # @cuda-driver:, # @disk-gib:"):
        parse_constraints(path)
    path.write_text(HEADER + "torch==2.10.0\n")
    with pytest.raises(VenvError, match="@install names vllm, which the file does not pin"):
        parse_constraints(path)
    path.write_text(HEADER + "vllm>=0.19\n")
    with pytest.raises(VenvError, match="not an exact pin"):
        parse_constraints(path)
    path.write_text(HEADER + "vllm==0.19.1\n")
    parsed = parse_constraints(path)
    assert parsed.python_ok((3, 11)) and not parsed.python_ok((3, 14)) and not parsed.python_ok((3, 9))
    assert parsed.cuda_driver == (12, 0)


def test_the_venv_of_an_executable() -> None:
    assert venv_root_of("/opt/vllm/bin/vllm") == Path("/opt/vllm")
    assert venv_root_of("/opt/secretary/xtts-venv/bin/python") == Path("/opt/secretary/xtts-venv")
    with pytest.raises(VenvError, match="not a program inside a venv"):
        venv_root_of("vllm")


def test_the_venv_is_usable_by_the_units_user_under_a_private_umask(tmp_path: Path, wheels: Path) -> None:
    """`secretary` runs under a private umask; the venv it makes as root must stay readable for the unit's user."""
    os.umask(0o077)  # conftest restores the umask after the test
    venv = _venv(tmp_path, _constraints(tmp_path, "vllm==0.19.1", "torch==2.10.0"))
    assert ensure_venv(venv, find_links=wheels, out=io.StringIO())
    module = next(venv.path.glob("lib/python3*/site-packages/vllm/__init__.py"))
    for path in (venv.path, venv.path / "bin", module, venv.stamp):
        assert path.stat().st_mode & 0o004, f"{path} is not world-readable"
