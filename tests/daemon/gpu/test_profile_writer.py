"""write_profile: the rtx3060 chains and budget written into real config files, comments kept, idempotent."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from config.engines_schema import AnthropicConfig, LlamaCppConfig, OpenAICompatibleConfig, VllmConfig
from config.errors import ConfigError
from config.loader import load_config, parse_config_text
from daemon.engine_host.engine_wiring import models_dir_of, stt_slots
from daemon.gpu.gpu_profiles import RTX3060
from daemon.gpu.profile_writer import NOTHING_TO_CHANGE, write_profile
from daemon.gpu.vram_budget import VramBudget, compute_budget
from engines.fallback_chain import FallbackChain
from engines.stt.stt_engine import SttEngine
from tests.engines import speech_samples as samples
from tests.support.stt_run import hear

REPO = Path(__file__).resolve().parents[3]
BUDGET = compute_budget(RTX3060, 12288)
ENGINES_WITH_CLOUD = """\
engines:
  models_dir: {models}
  # the owner's engines: the cloud ones are theirs to keep
  llm:
    chain: [cpu, claude, openai]   # as the owner left it
    backends:
      cpu: {{kind: llama_cpp, n_ctx: 4096}}
      openai:
        kind: openai_compatible
        provider: openai
        model: gpt-4o-mini        # a fast one
      claude: {{kind: anthropic}}
      gpu:
        kind: vllm
        executable: vllm
        max_loras: 4
  tts:
    chain: [piper, espeak]
"""


@pytest.fixture
def default_copy(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    shutil.copyfile(REPO / "config" / "default.yaml", path)
    return path


def test_the_default_config_gets_the_profile_with_its_comments_kept(default_copy: Path) -> None:
    before = default_copy.read_text(encoding="utf-8")
    lines = write_profile(default_copy, RTX3060, BUDGET, environ={})
    after = default_copy.read_text(encoding="utf-8")
    assert after.startswith(before)  # every line and comment of the file is kept; the engines section is added
    assert "# Embedded defaults: what `secretary demo` runs with on any machine." in after
    assert default_copy.with_name("config.yaml.bak").read_text(encoding="utf-8") == before
    engines = load_config(default_copy, environ={}).settings.engines  # the daemon's own loader accepts it
    assert engines.tts.chain == ["xtts", "rhvoice", "piper", "espeak"]
    assert (engines.tts.xtts.device, engines.tts.xtts.gpu_memory_fraction) == ("cuda", 0.19)
    assert engines.tts.xtts.model_dir == Path("xtts_v2")  # the lock's target
    assert engines.llm.chain == ["vllm", "local"]
    vllm = engines.llm.backends["vllm"]
    assert isinstance(vllm, VllmConfig) and isinstance(engines.llm.backends["local"], LlamaCppConfig)
    assert (vllm.gpu_memory_utilization, vllm.max_model_len, vllm.max_loras, vllm.max_lora_rank) == (0.53, 4096, 2, 16)
    assert (vllm.model, vllm.executable) == ("Qwen/Qwen2.5-7B-Instruct-AWQ", "/opt/vllm/bin/vllm")
    assert engines.stt.chain == ["faster-whisper", "faster-whisper-cpu"]
    whisper, cpu = engines.stt.faster_whisper, engines.stt.faster_whisper_cpu
    assert (whisper.device, whisper.compute_type) == ("cuda", "int8_float16")
    assert whisper.model == str(Path(".secretary-data") / "models" / "whisper-large-v3-turbo")
    assert (cpu.model, cpu.device, cpu.compute_type) == ("packaged:whisper-base", "cpu", "int8")
    assert "engines.llm.backends.vllm.gpu_memory_utilization: unset -> 0.53" in lines
    assert "engines.stt.chain: unset -> [faster-whisper, faster-whisper-cpu]" in lines


def test_dry_run_writes_nothing_and_a_rerun_changes_nothing(default_copy: Path) -> None:
    before = default_copy.read_bytes()
    planned = write_profile(default_copy, RTX3060, BUDGET, dry_run=True, environ={})
    assert default_copy.read_bytes() == before and not default_copy.with_name("config.yaml.bak").exists()
    assert "would set engines.tts.chain: unset -> [xtts, rhvoice, piper, espeak]" in planned
    written = write_profile(default_copy, RTX3060, BUDGET, environ={})
    assert [f"would set {line}" for line in written] == planned
    once = default_copy.read_bytes()
    default_copy.with_name("config.yaml.bak").unlink()
    assert write_profile(default_copy, RTX3060, BUDGET, environ={}) == [NOTHING_TO_CHANGE]
    assert write_profile(default_copy, RTX3060, BUDGET, dry_run=True, environ={}) == [NOTHING_TO_CHANGE]
    assert default_copy.read_bytes() == once and not default_copy.with_name("config.yaml.bak").exists()


def test_the_owners_backends_are_reused_and_a_cloud_backend_without_its_key_stays_out(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    text = (REPO / "config" / "example.yaml").read_text(encoding="utf-8")
    path.write_text(text + ENGINES_WITH_CLOUD.format(models=tmp_path / "models"), encoding="utf-8")
    environ = {"OPENAI_API_KEY": "sk-test"}
    lines = write_profile(path, RTX3060, BUDGET, environ=environ)
    after = path.read_text(encoding="utf-8")
    assert after.startswith(text)  # example.yaml's comments and keys, untouched
    assert "  # the owner's engines: the cloud ones are theirs to keep" in after
    assert "model: gpt-4o-mini        # a fast one" in after
    engines = load_config(path, environ=environ).settings.engines
    # the owner's vllm backend "gpu" and llama.cpp backend "cpu"; the keyed cloud backend between them
    assert engines.llm.chain == ["gpu", "openai", "cpu"]
    gpu = engines.llm.backends["gpu"]
    assert isinstance(gpu, VllmConfig) and gpu.executable == "/opt/vllm/bin/vllm" and gpu.max_loras == 2
    assert isinstance(engines.llm.backends["claude"], AnthropicConfig)  # still defined
    assert isinstance(engines.llm.backends["openai"], OpenAICompatibleConfig)
    assert "vllm" not in engines.llm.backends and "local" not in engines.llm.backends
    assert any("engines.llm.backends.claude stays out of engines.llm.chain: $ANTHROPIC_API_KEY is not set" in line
               for line in lines)
    assert engines.stt.faster_whisper.model == str(tmp_path / "models" / "whisper-large-v3-turbo")
    # with its key set, the other cloud backend joins, after those already chained
    write_profile(path, RTX3060, BUDGET, environ={**environ, "ANTHROPIC_API_KEY": "k"})
    assert load_config(path, environ=environ).settings.engines.llm.chain == ["gpu", "openai", "claude", "cpu"]


def test_a_result_the_loader_refuses_is_not_written(default_copy: Path) -> None:
    before = default_copy.read_bytes()
    too_greedy: VramBudget = replace(BUDGET, gpu_memory_utilization=0.99)  # the schema allows at most 0.95
    with pytest.raises(ConfigError) as refused:
        write_profile(default_copy, RTX3060, too_greedy, environ={})
    assert "gpu_memory_utilization" in refused.value.render()
    with pytest.raises(ConfigError):
        write_profile(default_copy, RTX3060, too_greedy, dry_run=True, environ={})
    assert default_copy.read_bytes() == before


def test_a_budget_that_does_not_fit_is_refused(default_copy: Path) -> None:
    with pytest.raises(ValueError, match="not one compute_budget chose"):
        write_profile(default_copy, RTX3060, VramBudget(total_mib=12288, consumers=()), environ={})


async def test_the_written_stt_chain_falls_back_to_whisper_base_on_the_cpu(default_copy: Path, tmp_path: Path) -> None:
    """Through the daemon's own wiring: the GPU's whisper cannot load here (no CUDA, no weights), whisper-base hears."""
    text = default_copy.read_text(encoding="utf-8")
    text = text.replace("data_dir: ./.secretary-data", f"data_dir: {tmp_path / 'data'}")
    default_copy.write_text(text, encoding="utf-8")
    write_profile(default_copy, RTX3060, BUDGET, environ={})
    settings = load_config(default_copy, environ={}).settings
    slots = stt_slots(settings.engines.stt, models_dir_of(settings.engines, settings.data_dir))
    assert [slot.label for slot in slots] == ["faster-whisper", "faster-whisper-cpu"]
    stt = SttEngine(FallbackChain("stt", slots))
    status = await stt.start()
    assert (status.backend, status.device) == ("faster-whisper-cpu", "cpu"), status
    assert any(failure.startswith("faster-whisper") for failure in status.failures), status.failures
    try:
        final, _ = await hear(stt, samples.speech(samples.APPOINTMENT), "en")
    finally:
        await stt.close()
    assert samples.word_error_rate(samples.APPOINTMENT, final.text) < 0.35, final.text


def test_the_cpu_whisper_must_stay_on_the_cpu() -> None:
    """engines.stt.faster_whisper_cpu (the profile's STT fallback) is refused on another device, saying why."""
    text = ("box_id: b\nengines:\n  stt:\n    chain: [faster-whisper, faster-whisper-cpu]\n"
            "    faster_whisper_cpu: {device: cuda}\n")
    with pytest.raises(ConfigError) as refused:
        parse_config_text(text, "config.yaml", {})
    rendered = refused.value.render()
    assert "engines.stt" in rendered and "faster_whisper_cpu.device is 'cuda', but it is the CPU fallback" in rendered
    default = parse_config_text("box_id: b\nengines:\n  stt: {chain: [faster-whisper-cpu]}\n", "config.yaml", {})
    cpu = default.settings.engines.stt.faster_whisper_cpu
    assert (cpu.model, cpu.device, cpu.compute_type) == ("packaged:whisper-base", "cpu", "int8")
