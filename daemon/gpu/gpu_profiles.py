"""GPU profiles: which engines a GPU box chains, in which order, and the shapes of their models.

A ``GpuProfile`` says, in the terms of the ``engines`` config section, what
the box runs on its card and what stands behind it when the card or a model
fails:

- TTS: XTTS v2 (the persona's cloned voice) on CUDA, then RHVoice (Russian)
  and Piper (English) on the CPU, then espeak-ng;
- LLM: vLLM (a 7B AWQ model with the personas' LoRA adapters), then the cloud
  backends the config defines (those whose API key is set), then llama.cpp;
- STT: whisper large-v3-turbo (CTranslate2) on CUDA, then whisper-base on the CPU.

The profile holds no config text and no budget: ``vram_budget.py`` turns a
profile and a card's memory into figures, ``profile_writer.py`` writes them
into the config file. The model shapes here (layers, heads, sizes) are the
published configs of the models, the arithmetic's inputs; each has its source.

Model directories live under ``engines.models_dir`` where the repository's
model lock (``gpu-models.lock.json``, ``daemon/gpu/models/model_lock.py``)
puts them: its entry for the model's repository names the ``target``
directory, and its file sizes, once pinned, are the LLM's weights for the
budget. Without a lock entry a model's directory is its repository id and its
weights come from its shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from daemon.gpu.models.model_lock import LockError, ModelEntry, load_lock

WhisperComputeType = Literal["float16", "int8_float16"]


@dataclass(frozen=True)
class LlmShape:
    """What the VRAM arithmetic needs of a decoder-only LLM (its ``config.json`` and its quantization)."""

    repo_id: str
    layers: int
    hidden: int
    intermediate: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied_embeddings: bool
    weight_bits: int  # of the quantized linear layers (AWQ: 4)
    group_size: int  # AWQ quantization group: one fp16 scale and one 4-bit zero per group
    native_context: int  # the longest max_model_len the model supports

    @property
    def kv_bytes_per_token(self) -> int:
        """K and V, every layer, every KV head, fp16: 2 * layers * kv_heads * head_dim * 2 bytes."""
        return 2 * self.layers * self.kv_heads * self.head_dim * FP16_BYTES

    @property
    def _linear_dims(self) -> tuple[tuple[int, int], ...]:
        """(in, out) of each linear layer of one decoder layer: q, k, v, o, gate, up, down."""
        kv = self.kv_heads * self.head_dim
        h, i = self.hidden, self.intermediate
        return ((h, h), (h, kv), (h, kv), (h, h), (h, i), (h, i), (i, h))

    @property
    def lora_bytes_per_rank(self) -> int:
        """One LoRA slot of rank 1: vLLM stacks A (rank x in) and B (out x rank) in fp16 for every linear layer."""
        return self.layers * sum(n_in + n_out for n_in, n_out in self._linear_dims) * FP16_BYTES

    @property
    def weight_bytes(self) -> int:
        """Quantized linear layers + their scales and zeros, and the fp16 embedding and output head."""
        linear = self.layers * sum(n_in * n_out for n_in, n_out in self._linear_dims)
        quantized = linear * self.weight_bits // 8
        per_group = FP16_BYTES + self.weight_bits / 8  # one fp16 scale, one packed zero
        groups = int(linear / self.group_size * per_group)
        embeddings = self.vocab * self.hidden * FP16_BYTES * (1 if self.tied_embeddings else 2)
        return quantized + groups + embeddings


FP16_BYTES = 2

# Qwen2.5-7B-Instruct's config.json (huggingface.co/Qwen/Qwen2.5-7B-Instruct): hidden_size 3584,
# intermediate_size 18944, num_hidden_layers 28, num_key_value_heads 4 (GQA; 28 query heads of 128),
# vocab_size 152064, tie_word_embeddings false, max_position_embeddings 32768; the AWQ build's
# quantization_config: bits 4, group_size 128. KV: 2*28*4*128*2 = 57,344 B per token; weights ≈ 5.57 GB.
QWEN25_7B_AWQ = LlmShape(
    repo_id="Qwen/Qwen2.5-7B-Instruct-AWQ", layers=28, hidden=3584, intermediate=18944, kv_heads=4, head_dim=128,
    vocab=152064, tied_embeddings=False, weight_bits=4, group_size=128, native_context=32768,
)
KNOWN_LLMS: MappingProxyType[str, LlmShape] = MappingProxyType({QWEN25_7B_AWQ.repo_id: QWEN25_7B_AWQ})


@dataclass(frozen=True)
class VllmPlan:
    """The vLLM backend the profile puts first in the LLM chain."""

    backend: str  # its name under engines.llm.backends, unless the config already has a vllm backend
    model: LlmShape
    executable: str
    max_loras: int
    max_lora_rank: int


@dataclass(frozen=True)
class XttsPlan:
    repo_id: str
    device: str


@dataclass(frozen=True)
class WhisperPlan:
    repo_id: str
    device: Literal["cuda", "cpu"]
    compute_type: WhisperComputeType


@dataclass(frozen=True)
class GpuProfile:
    """A card class and the engine chains that fit it (``vram_budget.compute_budget`` checks the fit)."""

    name: str
    description: str
    tts_chain: tuple[str, ...]
    xtts: XttsPlan
    vllm: VllmPlan
    llama_cpp_backend: str  # the CPU fallback's name under engines.llm.backends (kept if the config has one)
    stt_chain: tuple[str, ...]
    whisper_gpu: WhisperPlan
    cpu_whisper_model: str  # engines.stt.faster_whisper_cpu.model: the packaged whisper-base
    min_model_len: int  # below this a call's prompt and reply do not fit (tests/daemon/gpu: the personas' prompts)


# image/README.md "The GPU box": vLLM lives in its own venv at /opt/vllm.
VLLM_EXECUTABLE = "/opt/vllm/bin/vllm"
# The two bundled personas (config/personas.yaml: gulya, lidia), one adapter each, both resident; rank 16
# holds adapters trained at r <= 16 (vLLM refuses to load one of a higher rank: raise it here and the budget
# follows). vLLM preallocates max_loras x max_lora_rank for every linear layer (vram_budget.py): the schema's
# defaults (4 x 64) would take 1.2 GiB of a 12 GB card.
RTX3060_MAX_LORAS = 2
RTX3060_MAX_LORA_RANK = 16
# A call's prompt (system prompt + facts + tools + greeting + the caller's turn) takes up to 1,218 tokens
# as the daemon counts them for vLLM (the Russian persona, at half a token per UTF-8 byte) and the reply
# llm.max_tokens (200): 2048 would leave a Russian call ~600 tokens of history, 4096 leaves ~2,700
# (tests/daemon/gpu/test_vram_budget.py measures the bundled personas); older turns are trimmed to fit.
MIN_CALL_CONTEXT = 4096

RTX3060 = GpuProfile(
    name="rtx3060",
    description="NVIDIA RTX 3060 class, 12 GB: vLLM Qwen2.5-7B-AWQ + LoRA, XTTS v2, whisper large-v3-turbo",
    tts_chain=("xtts", "rhvoice", "piper", "espeak"),
    xtts=XttsPlan(repo_id="coqui/XTTS-v2", device="cuda"),
    vllm=VllmPlan(
        backend="vllm", model=QWEN25_7B_AWQ, executable=VLLM_EXECUTABLE,
        max_loras=RTX3060_MAX_LORAS, max_lora_rank=RTX3060_MAX_LORA_RANK,
    ),
    llama_cpp_backend="local",
    stt_chain=("faster-whisper", "faster-whisper-cpu"),
    # int8_float16: the same WER as float16 on large-v3-turbo, 1 GB less VRAM (vram_budget.py, its source)
    whisper_gpu=WhisperPlan(repo_id="mobiuslabsgmbh/faster-whisper-large-v3-turbo", device="cuda",
                            compute_type="int8_float16"),
    cpu_whisper_model="packaged:whisper-base",
    min_model_len=MIN_CALL_CONTEXT,
)

PROFILES: MappingProxyType[str, GpuProfile] = MappingProxyType({RTX3060.name: RTX3060})


def get_profile(name: str) -> GpuProfile:
    """The profile called ``name``; ValueError naming the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown GPU profile {name!r} (known: {', '.join(sorted(PROFILES))})") from None


def llm_shape_of(model: str) -> LlmShape | None:
    """The known shape of a configured vLLM model (a repo id, or a directory ending in one), else None."""
    normalized = model.rstrip("/")
    for repo_id, shape in KNOWN_LLMS.items():
        name = repo_id.split("/")[1]
        if normalized == repo_id or normalized.endswith("/" + repo_id) or normalized.endswith("/" + name):
            return shape
    return None


def _lock_entry(repo_id: str, lock_path: Path | None = None) -> ModelEntry | None:
    try:
        lock = load_lock(lock_path)
    except LockError:
        return None
    return next((entry for entry in lock.models if entry.repo == repo_id), None)


def model_target(repo_id: str, lock_path: Path | None = None) -> str:
    """The model's directory under engines.models_dir: the lock's target, else its repository id."""
    entry = _lock_entry(repo_id, lock_path)
    return entry.target if entry is not None else repo_id


def locked_weight_bytes(repo_id: str, suffix: str, lock_path: Path | None = None) -> int | None:
    """The sum of the locked sizes of the model's ``suffix`` files (``.safetensors``), None until all are known."""
    entry = _lock_entry(repo_id, lock_path)
    files = [f for f in entry.files if f.path.endswith(suffix)] if entry is not None else []
    if not files or any(f.size is None for f in files):
        return None
    return sum(f.size or 0 for f in files)
