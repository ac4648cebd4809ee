"""The ctypes binding of RHVoice's C API (``libRHVoice.so.5``, Debian's ``librhvoice5`` 1.8).

The structures mirror ``RHVoice.h`` / ``RHVoice_common.h`` of RHVoice 1.8.0
field by field (a wrong layout is a crash, not an error): ``RHVoice_callbacks``
has nine function pointers (``set_sample_rate``, ``play_speech``,
``process_mark``, four word/sentence marks, ``play_audio``, ``done``),
``RHVoice_init_params`` holds two paths, the NULL-terminated resource list, the
callbacks and the options, and ``RHVoice_synth_params`` the voice profile, the
absolute and relative rate/pitch/volume, punctuation and capitals modes and
flags. Enums are C ``int``s.

``RhvoiceEngine`` owns one ``RHVoice_tts_engine``: ``speak`` turns a text into
a message and synthesises it on the calling thread, handing each int16 chunk
to ``on_audio`` while it synthesises; ``on_audio`` returning False makes the
callback return 0, which stops the synthesis (barge-in). An engine is not
reentrant: ``speak`` holds a lock, so one message is spoken at a time; an
``EnginePool`` lends each concurrent request an engine of its own (a call's
reply while the phrase cache is being filled), making one more only when all
are busy. The library reads its settings from ``<config_dir>/RHVoice.conf``;
``quality`` is written there (``min`` makes the voices run at 16 kHz).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LIBRARY_NAME = "libRHVoice.so.5"
DATA_DIR = Path("/usr/share/RHVoice")
INSTALL_HINT = (
    "RHVoice is not installed: it lives in Debian's non-free component; enable it with a deb822 entry "
    "(Components: non-free) and run: apt-get install --no-install-recommends librhvoice5 rhvoice-russian "
    "(scripts/bootstrap does both)"
)

# enum values of RHVoice.h / RHVoice_common.h (1.8)
MESSAGE_TEXT = 0
PUNCTUATION_DEFAULT = 0
CAPITALS_DEFAULT = 0
QUALITIES = ("min", "standard", "max")


class RhvoiceLibraryError(RuntimeError):
    """The library is missing or refused a call."""


_SET_SAMPLE_RATE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
_PLAY_SPEECH = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_uint, ctypes.c_void_p)
_PROCESS_MARK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_TEXT_EVENT = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p)
_PLAY_AUDIO = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_DONE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class _Callbacks(ctypes.Structure):
    _fields_ = [
        ("set_sample_rate", _SET_SAMPLE_RATE),
        ("play_speech", _PLAY_SPEECH),
        ("process_mark", _PROCESS_MARK),
        ("word_starts", _TEXT_EVENT),
        ("word_ends", _TEXT_EVENT),
        ("sentence_starts", _TEXT_EVENT),
        ("sentence_ends", _TEXT_EVENT),
        ("play_audio", _PLAY_AUDIO),
        ("done", _DONE),
    ]


class _InitParams(ctypes.Structure):
    _fields_ = [
        ("data_path", ctypes.c_char_p),
        ("config_path", ctypes.c_char_p),
        ("resource_paths", ctypes.POINTER(ctypes.c_char_p)),
        ("callbacks", _Callbacks),
        ("options", ctypes.c_uint),
    ]


class _SynthParams(ctypes.Structure):
    _fields_ = [
        ("voice_profile", ctypes.c_char_p),
        ("absolute_rate", ctypes.c_double),
        ("absolute_pitch", ctypes.c_double),
        ("absolute_volume", ctypes.c_double),
        ("relative_rate", ctypes.c_double),
        ("relative_pitch", ctypes.c_double),
        ("relative_volume", ctypes.c_double),
        ("punctuation_mode", ctypes.c_int),
        ("punctuation_list", ctypes.c_char_p),
        ("capitals_mode", ctypes.c_int),
        ("flags", ctypes.c_int),
    ]


class _VoiceInfo(ctypes.Structure):
    _fields_ = [
        ("language", ctypes.c_char_p),
        ("name", ctypes.c_char_p),
        ("gender", ctypes.c_int),
        ("country", ctypes.c_char_p),
    ]


@dataclass(frozen=True)
class SynthParams:
    """What one message is spoken with: RHVoice's absolute values in [-1, 1], relative ones as factors (1 = as is)."""

    voice: str
    absolute_rate: float = 0.0
    absolute_pitch: float = 0.0
    absolute_volume: float = 0.0
    relative_rate: float = 1.0
    relative_pitch: float = 1.0
    relative_volume: float = 1.0


@dataclass(frozen=True)
class LibraryVoice:
    name: str
    language: str
    country: str


def load_library() -> ctypes.CDLL:
    """``libRHVoice.so.5`` with its functions typed; ``RhvoiceLibraryError`` (saying what to install) when absent."""
    try:
        lib = ctypes.CDLL(LIBRARY_NAME)
    except OSError:
        found = ctypes.util.find_library("RHVoice")
        if found is None:
            raise RhvoiceLibraryError(INSTALL_HINT) from None
        try:
            lib = ctypes.CDLL(found)
        except OSError as exc:
            raise RhvoiceLibraryError(f"cannot load {found}: {exc}; {INSTALL_HINT}") from None
    lib.RHVoice_get_version.restype = ctypes.c_char_p
    lib.RHVoice_get_version.argtypes = []
    lib.RHVoice_new_tts_engine.restype = ctypes.c_void_p
    lib.RHVoice_new_tts_engine.argtypes = [ctypes.POINTER(_InitParams)]
    lib.RHVoice_delete_tts_engine.restype = None
    lib.RHVoice_delete_tts_engine.argtypes = [ctypes.c_void_p]
    lib.RHVoice_get_number_of_voices.restype = ctypes.c_uint
    lib.RHVoice_get_number_of_voices.argtypes = [ctypes.c_void_p]
    lib.RHVoice_get_voices.restype = ctypes.POINTER(_VoiceInfo)
    lib.RHVoice_get_voices.argtypes = [ctypes.c_void_p]
    lib.RHVoice_new_message.restype = ctypes.c_void_p
    lib.RHVoice_new_message.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint, ctypes.c_int, ctypes.POINTER(_SynthParams), ctypes.c_void_p,
    ]
    lib.RHVoice_delete_message.restype = None
    lib.RHVoice_delete_message.argtypes = [ctypes.c_void_p]
    lib.RHVoice_speak.restype = ctypes.c_int
    lib.RHVoice_speak.argtypes = [ctypes.c_void_p]
    return lib


def write_config(config_dir: Path, quality: str) -> None:
    """``<config_dir>/RHVoice.conf`` with the engine-wide settings this box uses."""
    if quality not in QUALITIES:
        raise ValueError(f"RHVoice quality must be one of {', '.join(QUALITIES)}, got {quality!r}")
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "RHVoice.conf").write_text(f"; written by the AI Secretary box\nquality={quality}\n", encoding="utf-8")


class RhvoiceEngine:
    """One RHVoice engine (blocking calls: run them off the event loop)."""

    def __init__(self, config_dir: Path, data_dir: Path = DATA_DIR) -> None:
        self._lib = load_library()
        self._lock = threading.Lock()
        self._sink: Callable[[np.ndarray, int], bool] | None = None
        self._rate = 0
        self._failure: BaseException | None = None
        self._stopped = False
        # The callbacks must outlive the engine: ctypes frees a CFUNCTYPE object nobody references.
        self._callbacks = _Callbacks(
            set_sample_rate=_SET_SAMPLE_RATE(self._on_sample_rate),
            play_speech=_PLAY_SPEECH(self._on_speech),
            process_mark=_PROCESS_MARK(0),
            word_starts=_TEXT_EVENT(0),
            word_ends=_TEXT_EVENT(0),
            sentence_starts=_TEXT_EVENT(0),
            sentence_ends=_TEXT_EVENT(0),
            play_audio=_PLAY_AUDIO(0),
            done=_DONE(0),
        )
        self._paths = (str(data_dir).encode(), str(config_dir).encode())
        params = _InitParams(
            data_path=self._paths[0], config_path=self._paths[1], resource_paths=None, callbacks=self._callbacks, options=0,
        )
        handle = self._lib.RHVoice_new_tts_engine(ctypes.byref(params))
        if not handle:
            raise RhvoiceLibraryError(
                f"RHVoice found no languages or voices under {data_dir} (RHVoice_new_tts_engine failed); {INSTALL_HINT}"
            )
        self._handle: int | None = handle
        self.version = (self._lib.RHVoice_get_version() or b"").decode("utf-8", "replace")

    def voices(self) -> list[LibraryVoice]:
        """The voices the library found under its data directory."""
        handle = self._checked_handle()
        count = self._lib.RHVoice_get_number_of_voices(handle)
        infos = self._lib.RHVoice_get_voices(handle)

        def text(value: bytes | None) -> str:
            return (value or b"").decode("utf-8", "replace")

        return [LibraryVoice(text(infos[i].name), text(infos[i].language), text(infos[i].country)) for i in range(count)]

    def speak(self, text: str, params: SynthParams, on_audio: Callable[[np.ndarray, int], bool]) -> bool:
        """Synthesise ``text`` on this thread; ``on_audio(samples, rate)`` gets each chunk, False stops.

        Returns True when the whole text was spoken, False when ``on_audio`` stopped it
        (the library's own return value does not tell: it is 1 either way).
        """
        encoded = text.encode("utf-8")
        voice = params.voice.encode("utf-8")
        synth = _SynthParams(
            voice_profile=voice,
            absolute_rate=params.absolute_rate,
            absolute_pitch=params.absolute_pitch,
            absolute_volume=params.absolute_volume,
            relative_rate=params.relative_rate,
            relative_pitch=params.relative_pitch,
            relative_volume=params.relative_volume,
            punctuation_mode=PUNCTUATION_DEFAULT,
            punctuation_list=None,
            capitals_mode=CAPITALS_DEFAULT,
            flags=0,
        )
        with self._lock:
            handle = self._checked_handle()
            message = self._lib.RHVoice_new_message(handle, encoded, len(encoded), MESSAGE_TEXT, ctypes.byref(synth), None)
            if not message:
                raise RhvoiceLibraryError(f"RHVoice_new_message refused the text (voice {params.voice!r})")
            self._sink, self._failure, self._rate, self._stopped = on_audio, None, 0, False
            try:
                spoke = bool(self._lib.RHVoice_speak(message))
            finally:
                self._sink = None
                self._lib.RHVoice_delete_message(message)
            if self._failure is not None:
                raise self._failure
            return spoke and not self._stopped

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._lib.RHVoice_delete_tts_engine(self._handle)
                self._handle = None

    def _checked_handle(self) -> int:
        if self._handle is None:
            raise RhvoiceLibraryError("the RHVoice engine is closed")
        return self._handle

    # The library calls these on the thread inside RHVoice_speak. An exception cannot cross
    # into C: it is kept and raised by ``speak`` after the library returns (0 stops it first).

    def _on_sample_rate(self, sample_rate: int, _user: object) -> int:
        self._rate = int(sample_rate)
        return 1

    def _on_speech(self, samples: ctypes._Pointer, count: int, _user: object) -> int:  # type: ignore[type-arg]
        sink = self._sink
        if sink is None or self._rate <= 0:
            self._stopped = True
            return 0
        if count == 0:
            return 1
        try:
            chunk = np.ctypeslib.as_array(samples, shape=(count,)).astype(np.int16, copy=True)
            if sink(chunk, self._rate):
                return 1
        except BaseException as exc:  # noqa: BLE001 - re-raised by speak()
            self._failure = exc
        self._stopped = True
        return 0


class EnginePool:
    """Engines lent one per concurrent request: an idle one, or a new one when all are busy."""

    def __init__(self, config_dir: Path, data_dir: Path = DATA_DIR) -> None:
        self._config_dir, self._data_dir = config_dir, data_dir
        self._lock = threading.Lock()
        self._idle: list[RhvoiceEngine] = [RhvoiceEngine(config_dir, data_dir)]
        self._all: list[RhvoiceEngine] = list(self._idle)
        self._closed = False
        self.version = self._idle[0].version

    @property
    def size(self) -> int:
        return len(self._all)

    def voices(self) -> list[LibraryVoice]:
        with self.borrow() as engine:
            return engine.voices()

    @contextlib.contextmanager
    def borrow(self) -> Iterator[RhvoiceEngine]:
        with self._lock:
            if self._closed:
                raise RhvoiceLibraryError("the RHVoice engines are closed")
            engine = self._idle.pop() if self._idle else None
        if engine is None:
            engine = RhvoiceEngine(self._config_dir, self._data_dir)
            with self._lock:
                self._all.append(engine)
        try:
            yield engine
        finally:
            with self._lock:
                self._idle.append(engine)

    def close(self) -> None:
        """Close every engine (each waits for the message it is speaking)."""
        with self._lock:
            self._closed = True
            engines, self._all, self._idle = self._all, [], []
        for engine in engines:
            engine.close()
