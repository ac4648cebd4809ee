"""How many tokens a text takes in a model's vocabulary, without the model.

``GgufTokenCounter`` loads only the vocabulary of a GGUF file (llama.cpp's
``vocab_only``: a few megabytes, no weights, no context) into this process,
so counting never waits for a generation in the model's server. Counts are
cached by text: a conversation's messages are counted once each.

``estimate_tokens`` is for a backend with no local vocabulary: half the
UTF-8 bytes, which is above what byte-level BPE vocabularies take for
English and close for Cyrillic (SmolLM2: 0.44 tokens per byte of Russian).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from engines.backend import BackendError

CACHE_SIZE = 4096


def estimate_tokens(text: str) -> int:
    return (len(text.encode("utf-8")) + 1) // 2


class GgufTokenCounter:
    def __init__(self, path: Path) -> None:
        import llama_cpp

        try:
            self._vocab: Any = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise BackendError(f"llama.cpp could not read the vocabulary of {path.name}: {exc}") from None
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def count(self, text: str) -> int:
        if not text:
            return 0
        with self._lock:
            if (known := self._cache.get(text)) is not None:
                self._cache.move_to_end(text)
                return known
            tokens = len(self._vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))
            self._cache[text] = tokens
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
            return tokens

    def close(self) -> None:
        with self._lock:
            vocab, self._vocab = self._vocab, None
            self._cache.clear()
        if vocab is not None:
            vocab.close()
