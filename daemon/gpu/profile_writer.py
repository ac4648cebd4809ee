"""Writing a GPU profile and its VRAM budget into the config file, keeping the owner's comments.

``write_profile`` edits the file the way the web page saves it
(``daemon/web/config_editor.py``: round-trip YAML, the daemon's own loader
accepts the new text before a ``.bak`` copy and an atomic replace). It sets
only the keys the profile owns and leaves every other key, comment and
quote as it was:

- ``engines.tts.chain`` and ``engines.tts.xtts`` (model_dir, device,
  gpu_memory_fraction);
- ``engines.llm.chain``: the vLLM backend, then the cloud backends the
  config defines whose API key is set (one without its key would fail at
  every load and retry: it stays defined but out of the chain, and a line
  says which variable to set), then the llama.cpp backend; the vLLM backend
  (the config's own, else a new ``vllm``) gets its model, LoRA slots,
  ``gpu_memory_utilization`` and ``max_model_len``;
- ``engines.stt.chain``: whisper on CUDA (``faster_whisper``) then whisper-base
  on the CPU (``faster_whisper_cpu``).

It returns one line per key it changes (``dry_run`` returns them and writes
nothing); a second run with the same profile, budget and keys changes nothing
and leaves the file's bytes as they were.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from config.engines_schema import AnthropicConfig, LlamaCppConfig, OpenAICompatibleConfig, VllmConfig
from config.loader import LoadedConfig, parse_config_text
from daemon.engine_host.engine_wiring import models_dir_of
from daemon.engine_host.llm_keys import llm_key_env
from daemon.gpu.gpu_profiles import GpuProfile, model_target
from daemon.gpu.vram_budget import VramBudget
from daemon.web.config_editor import ConfigEditor

CLOUD_KINDS = (OpenAICompatibleConfig, AnthropicConfig)
NOTHING_TO_CHANGE = "the config already has this profile: nothing to change"


def _plain(value: Any) -> Any:
    """A round-trip YAML value as plain Python (for comparing with what the profile wants)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return "unset" if value is None else str(value)


class _Edit:
    """The round-trip data and the lines naming each change made to it."""

    def __init__(self, data: CommentedMap) -> None:
        self.data = data
        self.lines: list[str] = []

    def _parent(self, path: Sequence[str]) -> CommentedMap:
        node = self.data
        for key in path[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = CommentedMap()
                node[key] = child
            node = child
        return node

    def set(self, path: Sequence[str], value: Any) -> None:
        parent = self._parent(path)
        key = path[-1]
        old = _plain(parent.get(key))
        if key in parent and old == value:
            return
        if isinstance(value, list):
            seq = CommentedSeq(value)
            seq.fa.set_flow_style()
            parent[key] = seq
        else:
            parent[key] = value
        self.lines.append(f"{'.'.join(path)}: {_show(old)} -> {_show(value)}")

    def has(self, path: Sequence[str]) -> bool:
        node: Any = self.data
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return False
            node = node[key]
        return True


def _first_of_kind(loaded: LoadedConfig, kind: type, default: str) -> str:
    """The name of the chain's (else the config's) first LLM backend of ``kind``, else ``default``."""
    llm = loaded.settings.engines.llm
    for name in [*llm.chain, *llm.backends]:
        if isinstance(llm.backends.get(name), kind):
            return name
    return default


def _cloud_backends(loaded: LoadedConfig) -> tuple[list[str], list[str]]:
    """(cloud backends with their key, the lines about those left out), in the chain's then the config's order."""
    llm = loaded.settings.engines.llm
    keyed: list[str] = []
    notes: list[str] = []
    for name in dict.fromkeys([*llm.chain, *llm.backends]):
        backend = llm.backends[name]
        if not isinstance(backend, CLOUD_KINDS):
            continue
        env = llm_key_env(backend)
        if env is None or loaded.secret(env):
            keyed.append(name)
        else:
            notes.append(f"engines.llm.backends.{name} stays out of engines.llm.chain: ${env} is not set (put it in "
                         "the secrets file or the web page's Settings, then run the profile again)")
    return keyed, notes


def _llm(edit: _Edit, loaded: LoadedConfig, profile: GpuProfile, budget: VramBudget) -> list[str]:
    plan = profile.vllm
    vllm = _first_of_kind(loaded, VllmConfig, plan.backend)
    local = _first_of_kind(loaded, LlamaCppConfig, profile.llama_cpp_backend)
    base = ("engines", "llm", "backends")
    for name, kind in ((vllm, "vllm"), (local, "llama_cpp")):
        if not edit.has((*base, name)):  # a backend only the schema's defaults knew is written out
            edit.set((*base, name, "kind"), kind)
    executable = loaded.settings.engines.llm.backends.get(vllm)
    if not isinstance(executable, VllmConfig) or not Path(executable.executable).is_absolute():
        edit.set((*base, vllm, "executable"), plan.executable)  # where `secretary gpu setup` makes its venv
    edit.set((*base, vllm, "model"), model_target(plan.model.repo_id))
    edit.set((*base, vllm, "gpu_memory_utilization"), budget.gpu_memory_utilization)
    edit.set((*base, vllm, "max_model_len"), budget.max_model_len)
    edit.set((*base, vllm, "max_loras"), budget.max_loras)
    edit.set((*base, vllm, "max_lora_rank"), budget.max_lora_rank)
    cloud, notes = _cloud_backends(loaded)
    edit.set(("engines", "llm", "chain"), [vllm, *cloud, local])
    return notes


def _tts(edit: _Edit, profile: GpuProfile, budget: VramBudget) -> None:
    edit.set(("engines", "tts", "chain"), list(profile.tts_chain))
    edit.set(("engines", "tts", "xtts", "model_dir"), model_target(profile.xtts.repo_id))
    edit.set(("engines", "tts", "xtts", "device"), profile.xtts.device)
    edit.set(("engines", "tts", "xtts", "gpu_memory_fraction"), budget.xtts_gpu_memory_fraction)


def _stt(edit: _Edit, loaded: LoadedConfig, profile: GpuProfile, budget: VramBudget) -> None:
    models_dir = models_dir_of(loaded.settings.engines, loaded.settings.data_dir)
    gpu = profile.whisper_gpu
    edit.set(("engines", "stt", "chain"), list(profile.stt_chain))
    # a whisper model path is not resolved under models_dir (engines/stt/packaged_whisper.py): written whole
    edit.set(("engines", "stt", "faster_whisper", "model"), str(models_dir / model_target(gpu.repo_id)))
    edit.set(("engines", "stt", "faster_whisper", "device"), gpu.device)
    edit.set(("engines", "stt", "faster_whisper", "compute_type"), budget.whisper_compute_type or gpu.compute_type)
    edit.set(("engines", "stt", "faster_whisper_cpu", "model"), profile.cpu_whisper_model)
    edit.set(("engines", "stt", "faster_whisper_cpu", "device"), "cpu")
    edit.set(("engines", "stt", "faster_whisper_cpu", "compute_type"), "int8")


def _checked(budget: VramBudget) -> None:
    missing = [name for name, value in (("gpu_memory_utilization", budget.gpu_memory_utilization),
                                         ("max_model_len", budget.max_model_len),
                                         ("xtts_gpu_memory_fraction", budget.xtts_gpu_memory_fraction))
               if value is None]
    if missing or not budget.fits:
        reason = ", ".join(missing) or "does not fit"
        raise ValueError(f"the budget is not one compute_budget chose for a profile ({reason})")


def write_profile(
    config_path: Path, profile: GpuProfile, budget: VramBudget, *, dry_run: bool = False,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """Write ``profile`` with ``budget``'s figures into the config at ``config_path``; the lines say what changed.

    Raises ConfigError (the loader's, with the key and what is allowed) and
    writes nothing when the result would not load; ``environ`` is where the
    loader looks for the cloud backends' keys (default: the process's).
    """
    _checked(budget)
    editor = ConfigEditor(Path(config_path), environ)
    data, loaded = editor.load()
    edit = _Edit(data)
    _tts(edit, profile, budget)
    notes = _llm(edit, loaded, profile, budget)
    _stt(edit, loaded, profile, budget)
    lines = edit.lines or [NOTHING_TO_CHANGE]
    if not edit.lines:
        return [*lines, *notes]
    if dry_run:
        parse_config_text(editor.dump(data), str(config_path), environ)  # the same refusal as a real run
        return [*(f"would set {line}" for line in lines), *notes]
    editor.save(data)
    return [*lines, *notes]
