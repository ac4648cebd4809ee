"""The VRAM budget: what each process on the card takes, and the vLLM figures that make it all fit.

Three processes share the card, and each pays its own CUDA context: the
vLLM server, the XTTS worker and ``secretaryd`` (whisper runs in it, through
CTranslate2). Their sum, the margin and the memory the driver keeps for
itself must stay within the card's total (NVML's ``memory.total``).

vLLM's ``gpu_memory_utilization`` is a fraction of the total CUDA reports
(``cudaMemGetInfo``), which vLLM takes for its weights, LoRA slots,
activations and KV cache; at start it refuses to run unless that much is
free, and its CUDA context and CUDA graphs come on top. The XTTS worker caps
torch's allocator at ``gpu_memory_fraction`` of the same total.

``compute_budget(profile, total_mib)`` chooses the figures for a card: the
others' needs first, the largest vLLM fraction left (floored to 0.01), then
the largest standard ``max_model_len`` whose KV cache fits in what that
fraction leaves after weights, LoRA and activations, never below the
profile's ``min_model_len``; a card too small raises ``BudgetDoesNotFit``
with the numbers and what to change. ``configured_budget(engines, total_mib)``
weighs what a config already says against a real card (``secretary doctor``).
Every figure is a named constant below with its source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from config.engines_schema import EnginesConfig, FasterWhisperConfig, VllmConfig
from daemon.gpu.gpu_profiles import GpuProfile, LlmShape, llm_shape_of, locked_weight_bytes
from engines.stt.packaged_whisper import PACKAGED_PREFIX, PACKAGED_WHISPER_MODELS

MIB = 1024 * 1024
# NVML's memory.total counts memory the driver keeps: CUDA offers an RTX 3060 12 GB "a total capacity of
# 11.76 GiB" (12,042 of 12,288 MiB: PyTorch's out-of-memory message on that card) — 2 %.
NOT_OFFERED_TO_CUDA = 0.02
# One CUDA context per process: ~287 MB for torch with lazy module loading (pytorch/pytorch PR #86509,
# cudaMemGetInfo after a first tensor), "around 400MB if CUDA >= 11.7 is used and lazy module loading enabled"
# (pytorch/pytorch issue #109888, NVIDIA's ptrblck). Ampere, CUDA 12: the upper figure.
CUDA_CONTEXT_MIB = 400
# vLLM's activation peak, measured by its profile run at max_num_batched_tokens (2048, vLLM's serving
# default on cards under 70 GiB): the MLP of Qwen2.5-7B at 2048 tokens (gate_up 2048*37888*2 B + act
# 2048*18944*2 B ≈ 222 MiB + the attention's ~50 MiB) and the sampler's warm-up logits for max_num_seqs 256
# (256*152064*4 B = 149 MiB, x3 with the top-k/top-p sort). An estimate, to be replaced by the box's log line
# "PyTorch activation peak memory takes ...".
VLLM_ACTIVATION_MIB = 640
# CUDA graphs are captured after the KV cache is sized and are not inside gpu_memory_utilization
# (vllm-project/vllm issue #17549; PR #51590: a process "finished roughly 1.37 GiB over its own requested
# budget"): budgeted outside vLLM's share.
VLLM_OUTSIDE_SHARE_MIB = 512
# XTTS v2 loaded for inference: "VRAM use 2.1 GB" (coqui-ai/TTS issue #3976; torch's allocations; the fp32
# checkpoint model.pth is 1,867,929,118 B in gpu-models.lock.json); its streaming inference adds the GPT's
# cache for one sentence and the vocoder's activations: a budget of 256 MiB, not measured here.
XTTS_LOADED_MIB = 2003
XTTS_INFERENCE_MIB = 256
# faster-whisper large-v3-turbo (CTranslate2) on GPU, 13 min of audio, beam 5, max GPU memory incl. its
# context: fp16 2537 MB, int8 1545 MB, the same WER 1.919 (SYSTRAN/faster-whisper issue #1030, RTX 2080 Ti).
# The daemon decodes with beam 1 and 30 s windows: at most that. int8_float16 (int8 weights, fp16 elsewhere)
# takes at most the int8 row (int8 weights, fp32 elsewhere).
WHISPER_TURBO_PEAK_MB: dict[str, int] = {"float16": 2537, "int8_float16": 1545, "int8": 1545}
# Another whisper model on CUDA: its model.bin as stored plus turbo's workspace (int8: 1545 MB peak less the
# 400 MiB context and 809 M one-byte weights ≈ 320 MiB).
WHISPER_WORKSPACE_MIB = 320
WHISPER_TURBO_FP16_WEIGHTS_MIB = 1543  # 809 M parameters x 2 B: what float32 adds over float16
# What is kept free of every plan: fragmentation, a display, NVML's own use; the card's 4 %.
SAFETY_MARGIN_MIB = 512
# max_model_len candidates: powers of two, as vLLM's docs and the model cards state them.
STANDARD_MODEL_LENS = (32768, 16384, 8192, 4096, 2048, 1024)
CARD_STEP_MIB = 64  # the search for the smallest card that fits
LARGEST_CARD_MIB = 192 * 1024  # beyond any single card this box takes
UTILIZATION_STEP = 0.01  # the fraction is written with two decimals, floored (vLLM then takes no more)

VLLM_PROCESS = "vLLM server"
XTTS_PROCESS = "XTTS worker"
DAEMON_PROCESS = "secretaryd (whisper)"
CARD = "card"


class BudgetDoesNotFit(ValueError):
    """The profile's engines do not fit the card: the message has the numbers and what to change."""


@dataclass(frozen=True)
class Consumer:
    process: str
    what: str
    mib: int


@dataclass(frozen=True)
class VramBudget:
    """The planned MiB of every consumer on a card, and the figures the config gets (or has)."""

    total_mib: int  # NVML memory.total
    consumers: tuple[Consumer, ...]
    gpu_memory_utilization: float | None = None  # None: no vLLM on the card
    max_model_len: int | None = None
    kv_cache_tokens: int | None = None  # what vLLM's share leaves for the KV cache
    xtts_gpu_memory_fraction: float | None = None
    whisper_compute_type: str | None = None
    max_loras: int | None = None
    max_lora_rank: int | None = None
    problems: tuple[str, ...] = field(default=())  # what does not fit, each with what to change
    notes: tuple[str, ...] = field(default=())  # what the budget could not weigh

    @property
    def cuda_total_mib(self) -> int:
        return cuda_total_mib(self.total_mib)

    @property
    def planned_mib(self) -> int:
        return sum(c.mib for c in self.consumers)

    @property
    def spare_mib(self) -> int:
        return self.total_mib - self.planned_mib

    @property
    def fits(self) -> bool:
        return self.spare_mib >= 0 and not self.problems

    def lines(self, free_mib: int | None = None) -> list[str]:
        """The table for a person: one line per consumer, then the total against the card."""
        width = max((len(f"{c.process}: {c.what}") for c in self.consumers), default=0)
        out = [f"{f'{c.process}: {c.what}':<{width}} {c.mib:>6} MiB" for c in self.consumers]
        free = f", {free_mib} MiB free now" if free_mib is not None else ""
        out.append(f"{'planned':<{width}} {self.planned_mib:>6} MiB of {self.total_mib} MiB "
                   f"({self.spare_mib} MiB spare{free})")
        figures = []
        if self.gpu_memory_utilization is not None:
            figures.append(f"vLLM gpu_memory_utilization {self.gpu_memory_utilization:.2f} of "
                           f"{self.cuda_total_mib} MiB, max_model_len {self.max_model_len} "
                           f"(KV cache {self.kv_cache_tokens} tokens), "
                           f"LoRA {self.max_loras} x rank {self.max_lora_rank}")
        if self.xtts_gpu_memory_fraction is not None:
            figures.append(f"XTTS gpu_memory_fraction {self.xtts_gpu_memory_fraction:.2f}")
        if self.whisper_compute_type is not None:
            figures.append(f"whisper compute_type {self.whisper_compute_type}")
        if figures:
            out.append("; ".join(figures))
        out.extend(self.problems)
        out.extend(self.notes)
        return out


def cuda_total_mib(total_mib: int) -> int:
    """The total CUDA offers of a card with NVML total ``total_mib`` (the base of vLLM's and XTTS's fractions)."""
    return total_mib - math.ceil(total_mib * NOT_OFFERED_TO_CUDA)


def _mib(nbytes: int | float) -> int:
    return math.ceil(nbytes / MIB)


def _floor_step(value: float) -> float:
    return math.floor(value / UTILIZATION_STEP + 1e-9) * UTILIZATION_STEP


def _ceil_step(value: float) -> float:
    return math.ceil(value / UTILIZATION_STEP - 1e-9) * UTILIZATION_STEP


def whisper_mib(compute_type: str) -> int:
    """whisper large-v3-turbo on CUDA without its context (the context is the daemon's, counted once)."""
    peak_mb = WHISPER_TURBO_PEAK_MB.get(compute_type, WHISPER_TURBO_PEAK_MB["float16"])
    extra = WHISPER_TURBO_FP16_WEIGHTS_MIB if compute_type == "float32" else 0
    return _mib(peak_mb * 1_000_000) + extra - CUDA_CONTEXT_MIB


def weights(shape: LlmShape) -> tuple[int, str]:
    """(MiB, where from) of an LLM's weights: the lock's pinned .safetensors sizes, else its shape's arithmetic."""
    locked = locked_weight_bytes(shape.repo_id, ".safetensors")
    if locked is not None:
        return _mib(locked), "lock file sizes"
    return _mib(shape.weight_bytes), "from its shape"


def lora_mib(shape: LlmShape, max_loras: int, max_lora_rank: int) -> int:
    return _mib(shape.lora_bytes_per_rank * max_lora_rank * max_loras)


def _vllm_inside(shape: LlmShape, share_mib: int, max_loras: int, max_lora_rank: int) -> tuple[list[Consumer], int]:
    """vLLM's share split into weights, LoRA, activations and the KV cache; and the KV cache's tokens."""
    weight_mib, weights_from = weights(shape)
    lora = lora_mib(shape, max_loras, max_lora_rank)
    kv = share_mib - weight_mib - lora - VLLM_ACTIVATION_MIB
    tokens = max(kv, 0) * MIB // shape.kv_bytes_per_token
    return [
        Consumer(VLLM_PROCESS, f"weights ({shape.repo_id}, {weights_from})", weight_mib),
        Consumer(VLLM_PROCESS, f"LoRA slots ({max_loras} x rank {max_lora_rank})", lora),
        Consumer(VLLM_PROCESS, "activations (profile run)", VLLM_ACTIVATION_MIB),
        Consumer(VLLM_PROCESS, f"KV cache ({tokens} tokens x {shape.kv_bytes_per_token} B)", max(kv, 0)),
    ], tokens


def compute_budget(profile: GpuProfile, total_mib: int) -> VramBudget:
    """The figures that fit ``profile`` on a card of ``total_mib`` (NVML total); BudgetDoesNotFit when none do."""
    budget = _choose(profile, total_mib)
    if isinstance(budget, VramBudget):
        return budget
    smallest = smallest_card_mib(profile, total_mib)
    raise BudgetDoesNotFit(budget.replace("{smallest}", str(smallest) if smallest else "more"))


def _choose(profile: GpuProfile, total_mib: int) -> VramBudget | str:
    """The budget, or the refusal's text with ``{smallest}`` for the smallest card that fits."""
    cuda_total = cuda_total_mib(total_mib)
    xtts_fraction = _ceil_step((XTTS_LOADED_MIB + XTTS_INFERENCE_MIB) / cuda_total)
    xtts_share = math.ceil(xtts_fraction * cuda_total)
    whisper = whisper_mib(profile.whisper_gpu.compute_type)
    others = [
        Consumer(CARD, "kept by the driver (not offered to CUDA)", total_mib - cuda_total),
        Consumer(VLLM_PROCESS, "CUDA context", CUDA_CONTEXT_MIB),
        Consumer(VLLM_PROCESS, "CUDA graphs (outside its share)", VLLM_OUTSIDE_SHARE_MIB),
        Consumer(XTTS_PROCESS, "CUDA context", CUDA_CONTEXT_MIB),
        Consumer(XTTS_PROCESS, f"XTTS v2 (gpu_memory_fraction {xtts_fraction:.2f})", xtts_share),
        Consumer(DAEMON_PROCESS, "CUDA context", CUDA_CONTEXT_MIB),
        Consumer(DAEMON_PROCESS, f"whisper large-v3-turbo ({profile.whisper_gpu.compute_type})", whisper),
        Consumer(CARD, "safety margin", SAFETY_MARGIN_MIB),
    ]
    room = total_mib - sum(c.mib for c in others)  # what vLLM's share may take
    utilization = min(_floor_step(room / cuda_total), 0.95)  # 0.95: the schema's ceiling
    vllm = profile.vllm
    shape = vllm.model
    need = (weights(shape)[0] + lora_mib(shape, vllm.max_loras, vllm.max_lora_rank) + VLLM_ACTIVATION_MIB
            + _mib(profile.min_model_len * shape.kv_bytes_per_token))
    share = math.floor(utilization * cuda_total) if utilization > 0 else 0
    inside, tokens = _vllm_inside(shape, share, vllm.max_loras, vllm.max_lora_rank)
    fitting = [n for n in STANDARD_MODEL_LENS if profile.min_model_len <= n <= min(tokens, shape.native_context)]
    if not fitting:
        short = need - share
        return (
            f"profile {profile.name} does not fit a {total_mib} MiB card: vLLM needs {need} MiB (weights "
            f"{weights(shape)[0]}, LoRA {lora_mib(shape, vllm.max_loras, vllm.max_lora_rank)}, activations "
            f"{VLLM_ACTIVATION_MIB}, KV cache for {profile.min_model_len} tokens) but {share} MiB is left after "
            f"XTTS {xtts_share}, whisper {whisper}, three CUDA contexts of {CUDA_CONTEXT_MIB}, vLLM's graphs "
            f"{VLLM_OUTSIDE_SHARE_MIB} and the {SAFETY_MARGIN_MIB} margin ({short} MiB short): use a card with "
            f"at least {{smallest}} MiB, or take xtts out of engines.tts.chain / run whisper on the CPU "
            f"(engines.stt.faster_whisper.device cpu), or a smaller LLM"
        )
    return VramBudget(
        total_mib=total_mib,
        consumers=(*others[:3], *inside, *others[3:]),
        gpu_memory_utilization=round(utilization, 2),
        max_model_len=fitting[0],
        kv_cache_tokens=tokens,
        xtts_gpu_memory_fraction=round(xtts_fraction, 2),
        whisper_compute_type=profile.whisper_gpu.compute_type,
        max_loras=vllm.max_loras,
        max_lora_rank=vllm.max_lora_rank,
    )


def smallest_card_mib(profile: GpuProfile, above_mib: int) -> int | None:
    """The smallest card (NVML total, in steps of CARD_STEP_MIB) above ``above_mib`` that ``profile`` fits."""
    for total in range(above_mib + CARD_STEP_MIB, LARGEST_CARD_MIB + 1, CARD_STEP_MIB):
        if isinstance(_choose(profile, total), VramBudget):
            return total
    return None


def _whisper_on_gpu(engines: EnginesConfig) -> FasterWhisperConfig | None:
    stt = engines.stt
    for kind, section in (("faster-whisper", stt.faster_whisper), ("faster-whisper-cpu", stt.faster_whisper_cpu)):
        if kind in stt.chain and section.device in ("cuda", "auto"):  # auto takes CUDA when the card is there
            return section
    return None


def _model_bin_bytes(spec: str) -> int | None:
    if spec.startswith(PACKAGED_PREFIX):
        packaged = PACKAGED_WHISPER_MODELS.get(spec.removeprefix(PACKAGED_PREFIX))
        return packaged.model_bin_bytes if packaged is not None else None
    model_bin = Path(spec).expanduser() / "model.bin"
    return model_bin.stat().st_size if model_bin.is_file() else None


def _whisper_consumer(whisper: FasterWhisperConfig) -> tuple[Consumer, str | None]:
    compute = "float16" if whisper.compute_type == "auto" else whisper.compute_type
    if "large-v3-turbo" in whisper.model:
        return Consumer(DAEMON_PROCESS, f"whisper large-v3-turbo ({compute})", whisper_mib(compute)), None
    stored = _model_bin_bytes(whisper.model)
    if stored is not None:  # another CTranslate2 model: its weights as stored, and turbo's workspace
        return Consumer(DAEMON_PROCESS, f"whisper {whisper.model} (model.bin + workspace)",
                        _mib(stored) + WHISPER_WORKSPACE_MIB), None
    return (Consumer(DAEMON_PROCESS, f"whisper {whisper.model} (size unknown)", 0),
            f"whisper {whisper.model} on the GPU: its size is unknown to the budget (no model.bin), not counted")


def configured_budget(engines: EnginesConfig, total_mib: int) -> VramBudget:
    """What the configured engines take of a card of ``total_mib`` (NVML total), as configured."""
    cuda_total = cuda_total_mib(total_mib)
    consumers = [Consumer(CARD, "kept by the driver (not offered to CUDA)", total_mib - cuda_total)]
    problems: list[str] = []
    notes: list[str] = []
    figures: dict[str, object] = {}
    for name in engines.llm.chain:
        backend = engines.llm.backends[name]
        if not isinstance(backend, VllmConfig):
            continue
        share = math.floor(backend.gpu_memory_utilization * cuda_total)
        consumers.append(Consumer(VLLM_PROCESS, "CUDA context", CUDA_CONTEXT_MIB))
        consumers.append(Consumer(VLLM_PROCESS, "CUDA graphs (outside its share)", VLLM_OUTSIDE_SHARE_MIB))
        shape = llm_shape_of(backend.model)
        if shape is None:
            consumers.append(Consumer(VLLM_PROCESS, f"llm/{name} share ({backend.gpu_memory_utilization:.2f})", share))
            notes.append(f"llm/{name}: {backend.model} is unknown to the budget: its weights and KV cache are not "
                            "checked against gpu_memory_utilization")
        else:
            inside, tokens = _vllm_inside(shape, share, backend.max_loras, backend.max_lora_rank)
            consumers.extend(inside)
            if tokens < backend.max_model_len:
                need = (weights(shape)[0] + lora_mib(shape, backend.max_loras, backend.max_lora_rank)
                        + VLLM_ACTIVATION_MIB + _mib(backend.max_model_len * shape.kv_bytes_per_token))
                problems.append(
                    f"llm/{name}: gpu_memory_utilization {backend.gpu_memory_utilization:.2f} ({share} MiB) "
                    f"leaves a KV cache of {tokens} tokens, under max_model_len {backend.max_model_len} "
                    f"(needs {need} MiB): raise gpu_memory_utilization, lower max_model_len, max_loras or max_lora_rank"
                )
            figures.update(max_model_len=backend.max_model_len, kv_cache_tokens=tokens)
        figures.update(gpu_memory_utilization=backend.gpu_memory_utilization,
                       max_loras=backend.max_loras, max_lora_rank=backend.max_lora_rank)
        break  # one vLLM server on the card: the first of the chain
    xtts = engines.tts.xtts
    if "xtts" in engines.tts.chain and xtts.device.startswith("cuda"):
        share = math.ceil(xtts.gpu_memory_fraction * cuda_total)
        consumers.append(Consumer(XTTS_PROCESS, "CUDA context", CUDA_CONTEXT_MIB))
        consumers.append(Consumer(XTTS_PROCESS, f"XTTS v2 (gpu_memory_fraction {xtts.gpu_memory_fraction:.2f})", share))
        if share < XTTS_LOADED_MIB + XTTS_INFERENCE_MIB:
            problems.append(f"tts/xtts: gpu_memory_fraction {xtts.gpu_memory_fraction:.2f} ({share} MiB) is under the "
                            f"{XTTS_LOADED_MIB + XTTS_INFERENCE_MIB} MiB XTTS v2 takes: raise it to "
                            f"{_ceil_step((XTTS_LOADED_MIB + XTTS_INFERENCE_MIB) / cuda_total):.2f}")
        figures["xtts_gpu_memory_fraction"] = xtts.gpu_memory_fraction
    whisper = _whisper_on_gpu(engines)
    if whisper is not None:
        consumer, problem = _whisper_consumer(whisper)
        consumers.append(Consumer(DAEMON_PROCESS, "CUDA context", CUDA_CONTEXT_MIB))
        consumers.append(consumer)
        notes.extend([problem] if problem else [])
        figures["whisper_compute_type"] = whisper.compute_type
    consumers.append(Consumer(CARD, "safety margin", SAFETY_MARGIN_MIB))
    return VramBudget(total_mib=total_mib, consumers=tuple(consumers), problems=tuple(problems),
                      notes=tuple(notes), **figures)  # type: ignore[arg-type]
