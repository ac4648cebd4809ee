"""Which voice does a caller understand? RHVoice vs Piper vs espeak-ng: first audio, RTF, phone round-trip WER.

For every voice: RHVoice's voices licensed for commercial use (Russian),
espeak-ng Russian, and for English Piper (joe-us) and espeak-ng English (Piper
has no Russian voice in a registry package, and Debian's rhvoice-russian no
English one: each speaks its language's sentences, the same sentences for
every voice of a language). It measures, after load and warm-up, ``--runs``
syntheses of each sentence: time to the first chunk and RTF (synthesis time /
audio duration), as p50/p95/p99; then the round trip a caller hears: the
audio over the 8 kHz A-law line and back to 16 kHz, transcribed by the
packaged whisper-base (greedy, int8), word error rate per sentence
(tests/engines/tts_roundtrip.py) with p50/p95/p99 and the mean per voice.
Every case is counted. Prints a table, then ONE line of JSON. Never fails on time.

    .venv/bin/python bench/tts_voices.py [--runs 3] [--voices irina,anna,...]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.bench_tts import one_run, spread  # noqa: E402
from bench.json_line import machine, print_json_line  # noqa: E402
from config.rhvoice_voices import offered_voices  # noqa: E402
from engines.backend import BackendUnavailable  # noqa: E402
from engines.tts.espeak_backend import EspeakBackend  # noqa: E402
from engines.tts.interface import SynthesisRequest, TtsBackend  # noqa: E402
from engines.tts.piper_backend import PiperBackend  # noqa: E402
from engines.tts.rhvoice_backend import RhvoiceBackend  # noqa: E402
from engines.tts.settings import EspeakSettings, PiperSettings, RhvoiceSettings  # noqa: E402
from tests.engines.tts_roundtrip import (  # noqa: E402
    RUSSIAN_SENTENCES,
    load_whisper_base,
    transcribe,
)
from tests.support.phone_band import phone_call  # noqa: E402
from tests.support.word_error import word_errors  # noqa: E402

ENGLISH_SENTENCES = (
    "Hello, you have reached the office of Alex Morgan.",
    "Alex is busy right now, but I can take a message.",
    "May I have your name and the reason for your call?",
    "Thank you, I will pass your message on.",
    "He will call you back tomorrow morning.",
)
SENTENCES = {"ru": RUSSIAN_SENTENCES, "en": ENGLISH_SENTENCES}


def voices(rhvoice: list[str], models_dir: Path) -> list[tuple[str, str, TtsBackend]]:
    """(label, language, backend) for every voice measured."""
    chosen: list[tuple[str, str, TtsBackend]] = [
        (f"rhvoice-{v}", "ru", RhvoiceBackend(RhvoiceSettings(voices={"ru": v}))) for v in rhvoice
    ]
    chosen.append(("espeak-ru", "ru", EspeakBackend(EspeakSettings(voices={"ru": "ru"}))))
    chosen.append(("piper-joe-us", "en", PiperBackend(PiperSettings(), models_dir)))
    chosen.append(("espeak-en", "en", EspeakBackend(EspeakSettings(voices={"en": "en-us"}))))
    return chosen


async def measure(label: str, language: str, backend: TtsBackend, runs: int, whisper: Any) -> dict[str, Any]:
    try:
        await backend.load()
    except BackendUnavailable as exc:
        return {"voice": label, "language": language, "skipped": str(exc)}
    try:
        await backend.warm_up()
        first, rtf, errors, heard = [], [], [], []
        for sentence in SENTENCES[language]:
            request = SynthesisRequest(sentence, language)
            for _ in range(runs):
                ttfa, total, audio_s = await one_run(backend, request)
                first.append(ttfa * 1000)
                rtf.append(total / audio_s)
            chunks = [c async for c in backend.synthesize(request)]
            samples = np.concatenate([c.samples for c in chunks])
            text = await asyncio.to_thread(transcribe, whisper, phone_call(samples, chunks[0].sample_rate), language)
            errors.append(word_errors(sentence, text, language).rate)
            heard.append(text)
    finally:
        await backend.close()
    return {
        "voice": label, "language": language, "cases": len(first), "sentences": len(errors),
        "first_audio_ms": spread(first), "rtf": spread(rtf),
        "wer": spread(errors), "heard": heard,
    }


def print_table(results: list[dict[str, Any]]) -> None:
    print(f"{'voice':<22}{'lang':<6}{'first audio ms p50/p95/p99':<30}{'RTF p50/p95/p99':<26}{'WER mean (p50/p95/p99)'}")
    for r in results:
        if "skipped" in r:
            print(f"{r['voice']:<22}{r['language']:<6}skipped: {r['skipped']}")
            continue
        f, t, w = r["first_audio_ms"], r["rtf"], r["wer"]
        print(f"{r['voice']:<22}{r['language']:<6}"
              f"{f['p50']:>7.1f} {f['p95']:>7.1f} {f['p99']:>7.1f}       "
              f"{t['p50']:>6.3f} {t['p95']:>6.3f} {t['p99']:>6.3f}     "
              f"{w['mean']:>5.1%} ({w['p50']:.0%}/{w['p95']:.0%}/{w['p99']:.0%})")


async def run(runs: int, rhvoice: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-tts-voices-") as tmp:
        models_dir = Path(tmp)
        whisper = await asyncio.to_thread(load_whisper_base, models_dir)
        results = [await measure(label, language, backend, runs, whisper)
                   for label, language, backend in voices(rhvoice, models_dir)]
    return {"bench": "tts_voices", "runs_per_sentence": runs, "line": "8 kHz A-law", "stt": "whisper-base int8 greedy",
            "voices": results, "machine": machine()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed syntheses of each sentence per voice")
    parser.add_argument("--voices", default=",".join(offered_voices("ru")), help="RHVoice voices (commercial only)")
    args = parser.parse_args(argv)
    summary = asyncio.run(run(max(1, args.runs), [v for v in args.voices.split(",") if v]))
    print_table(summary["voices"])
    for r in summary["voices"]:
        r.pop("heard", None)
    print_json_line(summary, 4)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
