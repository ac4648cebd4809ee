"""Deterministic test signals."""

from __future__ import annotations

import numpy as np


def tone(freq: float, rate: int, seconds: float, amplitude: float = 0.5, phase: float = 0.0) -> np.ndarray:
    """A float32 sine."""
    t = np.arange(round(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def speechlike(rate: int, seconds: float, seed: int = 0, amplitude: float = 0.3) -> np.ndarray:
    """Band-limited noise with a syllable-rate envelope, roughly speech-shaped."""
    rng = np.random.default_rng(seed)
    n = round(rate * seconds)
    noise = rng.standard_normal(n)
    # crude band limit: moving average (low-pass) minus a longer one (high-pass)
    lp = np.convolve(noise, np.ones(4) / 4, mode="same")
    hp = lp - np.convolve(lp, np.ones(64) / 64, mode="same")
    t = np.arange(n) / rate
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t) ** 2
    x = hp * envelope
    x *= amplitude / max(1e-9, float(np.sqrt(np.mean(x**2))) * 3)
    return x.astype(np.float32)


def random_split(x: np.ndarray, rng: np.random.Generator, max_chunk: int) -> list[np.ndarray]:
    """Split into consecutive chunks of random sizes 1..max_chunk."""
    out = []
    i = 0
    while i < x.size:
        n = int(rng.integers(1, max_chunk + 1))
        out.append(x[i : i + n])
        i += n
    return out
