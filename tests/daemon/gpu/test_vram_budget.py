"""The VRAM budget's arithmetic on the profiles: what fits a 12 GB card, what an 8 or 6 GB card is refused."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from config.engines_schema import EnginesConfig
from config.loader import load_config
from daemon.dialogue.llm_dialogue import END_CALL, SAVE_MESSAGE, system_prompt
from daemon.gpu.gpu_profiles import QWEN25_7B_AWQ, RTX3060, get_profile, locked_weight_bytes, model_target
from daemon.gpu.vram_budget import (
    CUDA_CONTEXT_MIB,
    STANDARD_MODEL_LENS,
    VLLM_ACTIVATION_MIB,
    BudgetDoesNotFit,
    compute_budget,
    configured_budget,
    cuda_total_mib,
    lora_mib,
    weights,
)
from engines.llm.context_fit import fit_context
from engines.llm.interface import ChatMessage, ChatRequest
from engines.llm.settings import VllmSettings
from engines.llm.vllm_backend import VllmBackend

REPO = Path(__file__).resolve().parents[3]
RTX3060_MIB = 12288  # NVML memory.total of an RTX 3060 12 GB
MIB = 1024 * 1024


def test_the_model_shape_gives_the_published_figures() -> None:
    assert QWEN25_7B_AWQ.kv_bytes_per_token == 2 * 28 * 4 * 128 * 2 == 57_344
    assert 5.5e9 < QWEN25_7B_AWQ.weight_bytes < 5.65e9  # the AWQ checkpoint's ~5.6 GB
    # one rank of one LoRA slot: A and B of q, k, v, o, gate, up, down in every layer, fp16
    assert QWEN25_7B_AWQ.lora_bytes_per_rank == 28 * 90_112 * 2


def test_get_profile_names_the_known_ones() -> None:
    assert get_profile("rtx3060") is RTX3060
    with pytest.raises(ValueError, match=r"unknown GPU profile 'gtx1080' \(known: rtx3060\)"):
        get_profile("gtx1080")


def test_rtx3060_fits_a_12_gb_card_with_every_consumer_counted() -> None:
    budget = compute_budget(RTX3060, RTX3060_MIB)
    assert budget.fits and budget.planned_mib <= RTX3060_MIB
    processes = {c.process for c in budget.consumers}
    assert {"vLLM server", "XTTS worker", "secretaryd (whisper)"} <= processes
    contexts = [c for c in budget.consumers if c.what == "CUDA context"]
    assert len(contexts) == 3 and all(c.mib == CUDA_CONTEXT_MIB for c in contexts)
    # vLLM's share (a fraction of what CUDA offers) holds weights, LoRA, activations and the KV cache
    assert budget.gpu_memory_utilization is not None and budget.max_model_len is not None
    share = math.floor(budget.gpu_memory_utilization * cuda_total_mib(RTX3060_MIB))
    inside = [c for c in budget.consumers if c.process == "vLLM server" and "outside" not in c.what
              and c.what != "CUDA context"]
    assert sum(c.mib for c in inside) == share
    weights_mib = weights(QWEN25_7B_AWQ)[0]
    kv_room = share - weights_mib - lora_mib(QWEN25_7B_AWQ, 2, 16) - VLLM_ACTIVATION_MIB
    assert budget.max_model_len * QWEN25_7B_AWQ.kv_bytes_per_token <= kv_room * MIB
    # the largest standard length that fits, and never below what a call needs
    longer = [n for n in STANDARD_MODEL_LENS if n > budget.max_model_len]
    assert not longer or min(longer) * QWEN25_7B_AWQ.kv_bytes_per_token > kv_room * MIB
    assert budget.max_model_len >= RTX3060.min_model_len
    # one more step of vLLM's fraction would not fit the card
    more = (budget.gpu_memory_utilization + 0.01) * cuda_total_mib(RTX3060_MIB)
    assert budget.planned_mib - share + more > RTX3060_MIB
    # XTTS's cap covers the loaded model and its inference
    xtts = next(c for c in budget.consumers if c.process == "XTTS worker" and c.what != "CUDA context")
    assert xtts.mib >= 2003 + 256
    assert (budget.gpu_memory_utilization, budget.max_model_len, budget.xtts_gpu_memory_fraction) == (0.53, 4096, 0.19)


@pytest.mark.parametrize("total_mib", [8192, 6144])
def test_smaller_cards_are_refused_with_the_numbers_and_what_to_change(total_mib: int) -> None:
    with pytest.raises(BudgetDoesNotFit) as refused:
        compute_budget(RTX3060, total_mib)
    message = str(refused.value)
    assert f"does not fit a {total_mib} MiB card" in message
    assert "vLLM needs" in message and "MiB short" in message and "take xtts out of engines.tts.chain" in message
    smallest = int(message.split("use a card with at least ")[1].split(" ")[0])
    assert compute_budget(RTX3060, smallest).fits  # the card it names does fit
    with pytest.raises(BudgetDoesNotFit):
        compute_budget(RTX3060, smallest - 64)


def test_a_bigger_card_gets_a_longer_context_and_a_larger_vllm_share() -> None:
    twelve, sixteen = compute_budget(RTX3060, RTX3060_MIB), compute_budget(RTX3060, 16384)
    assert sixteen.max_model_len is not None and twelve.max_model_len is not None
    assert sixteen.max_model_len > twelve.max_model_len
    assert sixteen.max_model_len <= QWEN25_7B_AWQ.native_context


def test_lines_show_every_consumer_and_the_figures() -> None:
    budget = compute_budget(RTX3060, RTX3060_MIB)
    lines = budget.lines(free_mib=11800)
    assert len(lines) == len(budget.consumers) + 2
    assert any("whisper large-v3-turbo (int8_float16)" in line for line in lines)
    assert f"{budget.planned_mib} MiB of {RTX3060_MIB} MiB" in lines[-2] and "11800 MiB free now" in lines[-2]
    assert "gpu_memory_utilization 0.53" in lines[-1] and "max_model_len 4096" in lines[-1]


def _engines(yaml_engines: dict[str, object]) -> EnginesConfig:
    return EnginesConfig.model_validate(yaml_engines)


def _profile_engines(utilization: float, max_model_len: int, xtts_fraction: float) -> EnginesConfig:
    return _engines({
        "llm": {"chain": ["vllm", "local"], "backends": {
            "vllm": {"kind": "vllm", "gpu_memory_utilization": utilization, "max_model_len": max_model_len,
                     "max_loras": 2, "max_lora_rank": 16},
            "local": {"kind": "llama_cpp"}}},
        "tts": {"chain": ["xtts", "espeak"], "xtts": {"gpu_memory_fraction": xtts_fraction}},
        "stt": {"chain": ["faster-whisper", "faster-whisper-cpu"], "faster_whisper": {
            "model": "/models/whisper-large-v3-turbo", "device": "cuda", "compute_type": "int8_float16"}},
    })


def test_the_configured_figures_are_weighed_against_a_real_card() -> None:
    chosen = compute_budget(RTX3060, RTX3060_MIB)
    engines = _profile_engines(0.53, 4096, 0.19)
    on_12 = configured_budget(engines, RTX3060_MIB)
    assert on_12.fits and on_12.planned_mib == chosen.planned_mib
    on_8 = configured_budget(engines, 8192)
    assert not on_8.fits and on_8.spare_mib < 0
    # vLLM's share too small for its own max_model_len: said, with what to change
    starved = configured_budget(_profile_engines(0.48, 8192, 0.19), RTX3060_MIB)
    assert any("leaves a KV cache of" in p and "under max_model_len 8192" in p for p in starved.problems)
    small_xtts = configured_budget(_profile_engines(0.53, 4096, 0.1), RTX3060_MIB)
    assert any("tts/xtts: gpu_memory_fraction 0.10" in p and "raise it to 0.19" in p for p in small_xtts.problems)


def test_cpu_engines_take_nothing_of_the_card() -> None:
    cpu = {"tts": {"chain": ["piper", "espeak"]}, "stt": {"faster_whisper": {"device": "cpu"}}}
    budget = configured_budget(_engines(cpu), RTX3060_MIB)
    assert {c.process for c in budget.consumers} == {"card"} and budget.fits
    # device auto takes the card when there is one: the packaged whisper-base then counts
    auto = configured_budget(_engines({"tts": {"chain": ["espeak"]}}), RTX3060_MIB)
    whisper = [c for c in auto.consumers if c.process == "secretaryd (whisper)"]
    assert [c.what for c in whisper] == ["CUDA context", "whisper packaged:whisper-base (model.bin + workspace)"]
    assert whisper[1].mib == math.ceil(145_217_607 / MIB) + 320


def test_the_shortest_context_holds_a_call_of_each_bundled_persona() -> None:
    """min_model_len holds what the daemon sends: system prompt, tools, greeting, a caller's turn and the reply."""
    settings = load_config(REPO / "config" / "example.yaml").settings
    backend = VllmBackend(VllmSettings(max_model_len=RTX3060.min_model_len), Path("/nonexistent"))
    turn = "Hello, this is John Smith calling about my appointment tomorrow, " * 4  # ~15 s of speech
    for name, persona in settings.personas.items():
        request = ChatRequest(
            messages=(ChatMessage("system", system_prompt(persona, "+15550100")),
                      ChatMessage("assistant", persona.greeting), ChatMessage("user", turn)),
            tools=(SAVE_MESSAGE, END_CALL), max_tokens=settings.engines.llm.max_tokens, temperature=0.6,
        )
        fitted = fit_context(request, backend)
        assert fitted.fits and not fitted.trimmed, (name, fitted.prompt_tokens, fitted.budget)
        assert fitted.prompt_tokens < RTX3060.min_model_len / 2, name  # room for a conversation's history


def test_model_dirs_and_weights_come_from_the_lock(tmp_path: Path) -> None:
    lock = json.loads((REPO / "gpu-models.lock.json").read_text(encoding="utf-8"))
    targets = {entry["repo"]: entry["target"] for entry in lock["models"]}
    assert model_target(RTX3060.whisper_gpu.repo_id) == targets[RTX3060.whisper_gpu.repo_id]
    assert model_target(RTX3060.xtts.repo_id) == targets[RTX3060.xtts.repo_id]
    assert model_target("nobody/not-locked") == "nobody/not-locked"
    # once the LLM's files are pinned, their sizes are its weights
    entry = next(e for e in lock["models"] if e["repo"] == QWEN25_7B_AWQ.repo_id)
    for number, file in enumerate(f for f in entry["files"] if f["path"].endswith(".safetensors")):
        file["size"] = 3_000_000_000 + number
    pinned = tmp_path / "lock.json"
    pinned.write_text(json.dumps(lock), encoding="utf-8")
    assert locked_weight_bytes(QWEN25_7B_AWQ.repo_id, ".safetensors", pinned) == 6_000_000_001
