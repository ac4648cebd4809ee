"""Real human speech that ships inside Debian packages, with the packages' own transcripts.

No clip is synthetic and none is fetched from anywhere but Debian: ``scripts/bootstrap --test``
installs these bookworm ``main`` packages, and this module reads them where dpkg put them.

- ``asterisk-core-sounds-en-wav``: Allison Smith's IVR prompts (US English, a professional voice,
  CC-BY-SA-3.0), 16-bit 8 kHz; their transcripts are ``core-sounds-en.txt.gz`` in the docs of
  ``asterisk-core-sounds-en`` (lines ``name: text``, ``digits/7: seven``).
- ``asterisk-core-sounds-ru-wav``: the Russian IVR prompts recorded for ivrvoice.ru (CC-BY-3.0),
  8 kHz, transcripts in ``asterisk-core-sounds-ru``'s ``core-sounds-ru.txt.gz``. Phone prompts:
  the domain of the box, digits written as digits ("нажмите 1").
- ``festvox-ru``: Nickolay Shmyrev's read speech (fiction, names, numbers in words) recorded for
  Festival's ``msu_ru_nsh_clunits`` voice, 16 kHz; prompts in the voice's ``etc/txt.done.data``
  (``( ru_0001 "text" )``, ``+`` marks the stressed vowel and is dropped here).

A source whose package is not installed is reported by ``missing_sources`` (why, and the apt
package to install) so a test can skip with that reason; a source that is installed but broken
raises ``ValueError`` naming the file.

``dictations`` splice the packages' recorded digit words into phone numbers as people dictate
them (Russian "восемь, девять один шесть, ...", English "five five five, oh one three four"),
with short pauses between words and longer ones between groups: the words are real recordings,
the sequence is made here, and the digits expected are known.
"""

from __future__ import annotations

import functools
import gzip
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drivers.audio.wav_io import read_wav


@dataclass(frozen=True)
class SpeechSource:
    """One package of recordings: where its audio and its transcripts are installed."""

    name: str
    language: str
    audio_package: str
    audio_dir: Path
    transcript_package: str
    transcript_file: Path
    kind: str  # "asterisk" (name: text lines) or "festvox" (( id "text" ) lines)


@dataclass(frozen=True)
class SpeechClip:
    """One recording and what its package says is spoken in it."""

    clip_id: str  # "<source>:<name>", unique over the set
    source: str
    language: str
    package: str
    path: Path
    reference: str

    @property
    def words(self) -> int:
        return len(self.reference.split())


ASTERISK_EN = SpeechSource(
    "asterisk-en", "en", "asterisk-core-sounds-en-wav", Path("/usr/share/asterisk/sounds/en_US_f_Allison"),
    "asterisk-core-sounds-en", Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"), "asterisk",
)
ASTERISK_RU = SpeechSource(
    "asterisk-ru", "ru", "asterisk-core-sounds-ru-wav", Path("/usr/share/asterisk/sounds/ru_RU_f_IvrvoiceRU"),
    "asterisk-core-sounds-ru", Path("/usr/share/doc/asterisk-core-sounds-ru/core-sounds-ru.txt.gz"), "asterisk",
)
_FESTVOX_RU_DIR = Path("/usr/share/festival/voices/russian/msu_ru_nsh_clunits")
FESTVOX_RU = SpeechSource(
    "festvox-ru", "ru", "festvox-ru", _FESTVOX_RU_DIR / "wav", "festvox-ru", _FESTVOX_RU_DIR / "etc/txt.done.data",
    "festvox",
)
SOURCES: tuple[SpeechSource, ...] = (ASTERISK_EN, ASTERISK_RU, FESTVOX_RU)

# asterisk prompt folders that are not sentences: spelled letters, NATO alphabet words, silence
_ASTERISK_SKIPPED_DIRS = ("letters/", "phonetic/", "silence/")
_ASTERISK_LINE_RE = re.compile(r"^(?P<name>[\w\-/]+):\s*(?P<text>.*)$")
_FESTVOX_LINE_RE = re.compile(r'^\(\s*(?P<name>\S+)\s+"(?P<text>.*)"\s*\)\s*$')
_BRACKETED_RE = re.compile(r"\[[^\]]*\]|<[^>]*>|\(note:[^)]*\)")
# a caller's utterance: a few words to a long sentence (20 Russian words stay under the product's
# token cap of 96 per whisper window, so a cut transcript does not count as mishearing)
MIN_WORDS = 3
MAX_WORDS = 20


def missing_sources(sources: tuple[SpeechSource, ...] = SOURCES) -> dict[str, str]:
    """Source name -> why it cannot be read here (its package is not installed), for the absent ones."""
    missing: dict[str, str] = {}
    for source in sources:
        if not source.audio_dir.is_dir():
            missing[source.name] = f"{source.audio_dir} is absent: apt-get install {source.audio_package}"
        elif not source.transcript_file.is_file():
            missing[source.name] = (
                f"{source.transcript_file} is absent: apt-get install {source.transcript_package} "
                "(and keep /usr/share/doc: no dpkg path-exclude for it)"
            )
    return missing


def _asterisk_transcripts(source: SpeechSource) -> dict[str, str]:
    with gzip.open(source.transcript_file, "rt", encoding="utf-8") as lines:
        rows = lines.read().splitlines()
    found: dict[str, str] = {}
    for row in rows:
        match = _ASTERISK_LINE_RE.match(row.strip())
        if row.startswith(";") or match is None:
            continue
        name, text = match["name"], match["text"]
        text = text.removeprefix(f"{name}:").strip()  # a few lines repeat their own name
        found[name] = text
    if not found:
        raise ValueError(f"{source.transcript_file}: no 'name: text' lines (package {source.transcript_package})")
    return found


def _festvox_transcripts(source: SpeechSource) -> dict[str, str]:
    found: dict[str, str] = {}
    for row in source.transcript_file.read_text(encoding="utf-8").splitlines():
        match = _FESTVOX_LINE_RE.match(row.strip())
        if match is not None:
            found[match["name"]] = match["text"].replace("+", "")
    if not found:
        raise ValueError(f'{source.transcript_file}: no ( id "text" ) lines (package {source.transcript_package})')
    return found


@functools.cache
def transcripts(source: SpeechSource) -> dict[str, str]:
    """Prompt name -> the package's transcript of it, as written there (stress marks dropped)."""
    return _asterisk_transcripts(source) if source.kind == "asterisk" else _festvox_transcripts(source)


@functools.cache
def source_clips(source: SpeechSource) -> tuple[SpeechClip, ...]:
    """Every clip of ``source`` that has audio and a spoken transcript, sorted by name."""
    clips: list[SpeechClip] = []
    for name, text in sorted(transcripts(source).items()):
        if source.kind == "asterisk" and (name.startswith(_ASTERISK_SKIPPED_DIRS) or text[:1] in "[<("):
            continue
        reference = " ".join(_BRACKETED_RE.sub(" ", text).split())
        path = source.audio_dir / f"{name}.wav"
        if reference and path.is_file():
            clips.append(SpeechClip(f"{source.name}:{name}", source.name, source.language, source.audio_package, path, reference))
    if not clips:
        raise ValueError(f"{source.audio_dir}: no recording matches a transcript of {source.transcript_file}")
    return tuple(clips)


def utterances(source: SpeechSource, count: int | None = None) -> list[SpeechClip]:
    """The clips of ``source`` that sound like a caller's utterance (MIN_WORDS..MAX_WORDS words).

    ``count``: that many, spread evenly over the sorted list (the same ones every run); None: all.
    """
    return _spread([clip for clip in source_clips(source) if MIN_WORDS <= clip.words <= MAX_WORDS], count)


# digits, or a number word (English, or a Russian number stem in any case): the clips the number parsers get
_NUMBER_RE = re.compile(
    r"\d|\b(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|hundred)\b"
    r"|(?<![а-яё])(?:один|одн(?:а|о|и|у|ого|ой)|дв[аеу]|двух|тр[иеё]|трех|четыре|четырех|пят[ьи]|шест[ьи]|сем[ьи]"
    r"|восемь|восьми|девят[ьи]|десят[ьи]|[а-я]+надцат[ьи]|двадцат[ьи]|тридцат[ьи]|сорок[а]?|[а-я]+десят"
    r"|девяност[оа]|ст[оа]|двест[и]|двухсот|трист[ао]|тысяч[аиу]?|половин(?:а|ой|у))(?![а-яё])",
    re.IGNORECASE,
)


def _spread(clips: list[SpeechClip], count: int | None) -> list[SpeechClip]:
    if count is None or count >= len(clips):
        return clips
    step = len(clips) / count
    return [clips[int(i * step)] for i in range(count)]


def with_numbers(source: SpeechSource, count: int | None = None) -> list[SpeechClip]:
    """The caller-sized clips of ``source`` whose reference says a number (digits or number words), spread."""
    return _spread([clip for clip in utterances(source) if _NUMBER_RE.search(clip.reference)], count)


# a name said after a lead-in ("это Тьяден", "Ваша фамилия? - Йозеф Хамахер"): the clips the name parser gets
_INTRODUCTION_RE = re.compile(
    r"[Мм]еня зовут|[Мм]оя фамилия|[Вв]аша фамилия|(?<![а-яё])это [А-ЯЁ][а-яё]+|[Mm]y name is|[Tt]his is [A-Z][a-z]+"
)


def with_names(source: SpeechSource) -> list[SpeechClip]:
    """The caller-sized clips of ``source`` where a name follows an introduction."""
    return [clip for clip in utterances(source) if _INTRODUCTION_RE.search(clip.reference)]


def clip_by_id(clip_id: str) -> SpeechClip:
    """The clip ``<source>:<name>`` (KeyError when no installed source has it)."""
    source_name = clip_id.split(":", 1)[0]
    for source in SOURCES:
        if source.name == source_name:
            for clip in source_clips(source):
                if clip.clip_id == clip_id:
                    return clip
    raise KeyError(clip_id)


def load_audio(clip: SpeechClip) -> tuple[np.ndarray, int]:
    """The clip's int16 samples and their rate, as the package ships them."""
    return read_wav(clip.path)


@dataclass(frozen=True)
class Dictation:
    """A phone number dictated with a package's recorded digit words: groups of prompt names."""

    dictation_id: str
    source: SpeechSource
    groups: tuple[tuple[str, ...], ...]  # e.g. (("digits/8",), ("digits/9", "digits/1", "digits/6"), ...)

    @property
    def digits(self) -> str:
        """The number said, from the package's names of its digit prompts ("digits/40" says 40, "oh" 0).

        A tens word and the unit after it make one number ("сорок", "пять": 45); other words are digits.
        """
        said: list[int] = []
        for group in self.groups:
            for name in group:
                value = int(name.removeprefix("digits/").replace("oh", "0"))
                joins = said and said[-1] >= 20 and said[-1] % 10 == 0 and 1 <= value <= 9
                said[-1:] = [said[-1] + value] if joins else [*said[-1:], value]
        return "".join(map(str, said))

    @property
    def reference(self) -> str:
        """The words said, from the package's transcripts of its digit prompts."""
        texts = transcripts(self.source)
        return ", ".join(" ".join(texts[name] for name in group) for group in self.groups)


def _digits(*names: str) -> tuple[str, ...]:
    return tuple(f"digits/{n}" for n in names)


DICTATIONS: tuple[Dictation, ...] = (
    Dictation("ru-mobile", ASTERISK_RU, (_digits("8"), _digits("9", "1", "6"), _digits("1", "2", "3"), _digits("40", "5"),
              _digits("60", "7"))),
    Dictation("ru-city", ASTERISK_RU, (_digits("4", "9", "5"), _digits("7", "0", "3"), _digits("20", "1"),
              _digits("18"))),
    Dictation("en-local", ASTERISK_EN, (_digits("5", "5", "5"), _digits("oh", "1", "3", "4"))),
    Dictation("en-long", ASTERISK_EN, (_digits("1"), _digits("2", "0", "2"), _digits("5", "5", "5"),
              _digits("0", "1", "9", "8"))),
)
WORD_PAUSE_S = 0.04  # inside a group the words run on, as "сорок пять" is said
GROUP_PAUSE_S = 0.35
_EDGE_BELOW_PEAK_DB = 35.0
_EDGE_MARGIN_S = 0.02


def trimmed(pcm: np.ndarray, rate: int) -> np.ndarray:
    """``pcm`` without the silence a prompt file starts and ends with (10 ms frames 35 dB under the peak)."""
    frame = rate // 100
    n = len(pcm) // frame
    if n == 0:
        return pcm
    rms = np.sqrt(np.mean(pcm[: n * frame].astype(np.float64).reshape(n, frame) ** 2, axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (-_EDGE_BELOW_PEAK_DB / 20))
    margin = round(_EDGE_MARGIN_S * rate)
    return pcm[max(0, loud[0] * frame - margin) : min(len(pcm), (loud[-1] + 1) * frame + margin)]


def dictation_audio(dictation: Dictation) -> tuple[np.ndarray, int]:
    """The dictation as one int16 recording at its words' rate: real words, their edges trimmed, short pauses."""
    parts: list[np.ndarray] = []
    rate = 0
    for g, group in enumerate(dictation.groups):
        for w, name in enumerate(group):
            pcm, word_rate = read_wav(dictation.source.audio_dir / f"{name}.wav")
            if rate and word_rate != rate:
                raise ValueError(f"{dictation.dictation_id}: {name} is at {word_rate} Hz, the others at {rate} Hz")
            rate = word_rate
            pause = GROUP_PAUSE_S if w == 0 else WORD_PAUSE_S
            parts.append(np.zeros(round(pause * rate), dtype=np.int16))
            parts.append(trimmed(pcm, rate))
    parts.append(np.zeros(round(GROUP_PAUSE_S * rate), dtype=np.int16))
    return np.concatenate(parts), rate
