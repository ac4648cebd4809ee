"""G.711 A-law / mu-law: bit-exact against the ITU algorithm, every code round-trips."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.audio import g711
from drivers.audio.line_codec import LineCodec, LineDecoder

# --- independent scalar reference, written from ITU-T G.711 / G.191 (not from the module) ---


def ref_alaw_compress(sample: int) -> int:
    """G.191 A-law quantiser on one 16-bit sample (13 most significant bits used)."""
    ix = (~sample if sample < 0 else sample) >> 4  # one's complement magnitude, 0..2047
    if ix > 15:
        exponent = 1
        while ix > 16 + 15:
            ix >>= 1
            exponent += 1
        ix -= 16
        ix += exponent << 4
    if sample >= 0:
        ix |= 0x80
    return ix ^ 0x55


def ref_ulaw_compress(sample: int) -> int:
    """G.191 mu-law quantiser on one 16-bit sample (14 most significant bits used)."""
    absno = ((~sample if sample < 0 else sample) >> 2) + 33
    absno = min(absno, 0x1FFF)
    i = absno >> 6
    segno = 1
    while i:
        segno += 1
        i >>= 1
    high = 8 - segno
    low = 0x0F - ((absno >> segno) & 0x0F)
    code = (high << 4) | low
    if sample >= 0:
        code |= 0x80
    return code


def itu_alaw_value(code: int) -> int:
    """G.711 Table 1 decoder output (13-bit scale: 1, 3, .. 4032) scaled to 16 bits."""
    v = code ^ 0x55
    seg, mant = (v >> 4) & 7, v & 15
    magnitude = 2 * mant + 1 if seg == 0 else (2 * mant + 33) * 2 ** (seg - 1)
    return 8 * (magnitude if v & 0x80 else -magnitude)


def itu_ulaw_value(code: int) -> int:
    """G.711 Table 2 decoder output (14-bit scale: 0, 2, .. 8031) scaled to 16 bits."""
    v = (~code) & 0xFF
    seg, mant = (v >> 4) & 7, v & 15
    magnitude = (2 * mant + 33) * 2**seg - 33
    return 4 * (-magnitude if v & 0x80 else magnitude)


ALL_INT16 = np.arange(-32768, 32768, dtype=np.int32)
ALL_CODES = np.arange(256, dtype=np.uint8)


def test_alaw_encoder_matches_reference_for_every_int16() -> None:
    expected = np.array([ref_alaw_compress(int(s)) for s in ALL_INT16], dtype=np.uint8)
    got = g711.alaw_encode(ALL_INT16.astype(np.int16))
    mismatch = np.nonzero(got != expected)[0]
    assert mismatch.size == 0, f"first mismatches at inputs {ALL_INT16[mismatch[:5]]}"


def test_ulaw_encoder_matches_reference_for_every_int16() -> None:
    expected = np.array([ref_ulaw_compress(int(s)) for s in ALL_INT16], dtype=np.uint8)
    got = g711.ulaw_encode(ALL_INT16.astype(np.int16))
    mismatch = np.nonzero(got != expected)[0]
    assert mismatch.size == 0, f"first mismatches at inputs {ALL_INT16[mismatch[:5]]}"


def test_decoders_match_itu_tables_for_all_256_codes() -> None:
    assert g711.alaw_decode(ALL_CODES).tolist() == [itu_alaw_value(c) for c in range(256)]
    assert g711.ulaw_decode(ALL_CODES).tolist() == [itu_ulaw_value(c) for c in range(256)]


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xD5, 8), (0x55, -8), (0xD4, 24), (0xAA, 32256), (0x2A, -32256), (0xC5, 264), (0xF5, 528)],
)
def test_alaw_known_values(code: int, value: int) -> None:
    assert int(g711.alaw_decode(bytes([code]))[0]) == value


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xFF, 0), (0x7F, 0), (0xFE, 8), (0x7E, -8), (0x80, 32124), (0x00, -32124), (0xEF, 132)],
)
def test_ulaw_known_values(code: int, value: int) -> None:
    assert int(g711.ulaw_decode(bytes([code]))[0]) == value


def test_encoder_known_values() -> None:
    x = np.array([0, -1, 32767, -32768, 8, -9], dtype=np.int16)
    assert g711.alaw_encode(x).tolist() == [0xD5, 0x55, 0xAA, 0x2A, 0xD5, 0x55]
    assert g711.ulaw_encode(x).tolist() == [0xFF, 0x7F, 0x80, 0x00, 0xFE, 0x7E]


def test_every_alaw_code_round_trips() -> None:
    assert g711.alaw_encode(g711.alaw_decode(ALL_CODES)).tolist() == list(range(256))


def test_every_ulaw_code_round_trips_except_negative_zero() -> None:
    back = g711.ulaw_encode(g711.ulaw_decode(ALL_CODES))
    expected = list(range(256))
    expected[0x7F] = 0xFF  # negative zero decodes to 0, which encodes as positive zero
    assert back.tolist() == expected


@pytest.mark.parametrize(
    ("encode", "decode"), [(g711.alaw_encode, g711.alaw_decode), (g711.ulaw_encode, g711.ulaw_decode)]
)
def test_quantisation_error_within_half_a_step(encode, decode) -> None:  # type: ignore[no-untyped-def]
    x = ALL_INT16.astype(np.int16)
    y = decode(encode(x)).astype(np.int32)
    err = np.abs(y - ALL_INT16)
    # step doubles per segment; relative error of a log quantiser stays small
    assert np.all(err[np.abs(ALL_INT16) < 256] <= 16)
    big = np.abs(ALL_INT16) >= 1024
    assert np.all(err[big] <= np.abs(ALL_INT16[big]) / 16 + 8)


def test_decode_tables_are_monotonic_in_magnitude() -> None:
    for table in (g711.ALAW_DECODE_TABLE, g711.ULAW_DECODE_TABLE):
        assert sorted(set(table.tolist())) == sorted(set((-table).tolist()))
    positive_alaw = np.sort(g711.ALAW_DECODE_TABLE[g711.ALAW_DECODE_TABLE > 0])
    assert np.all(np.diff(positive_alaw) > 0) and positive_alaw.size == 128


@pytest.mark.parametrize("codec", list(LineCodec))
def test_line_codec_round_trip(codec: LineCodec) -> None:
    x = np.array([0, 100, -100, 1000, -1000, 32767, -32768], dtype=np.int16)
    wire = codec.encode(x)
    assert len(wire) == x.size * codec.bytes_per_sample
    y = codec.decode(wire)
    if codec is LineCodec.PCM16:
        assert wire[:4] == b"\x00\x00\x64\x00"  # little-endian
        assert y.tolist() == x.tolist()
    else:
        assert np.all(np.abs(y.astype(np.int32) - x) <= np.abs(x.astype(np.int32)) / 16 + 16)


def test_line_codec_from_config_string() -> None:
    assert LineCodec("alaw") is LineCodec.ALAW
    with pytest.raises(ValueError):
        LineCodec("gsm")


def test_line_decoder_carries_odd_pcm16_byte() -> None:
    dec = LineDecoder("pcm16")
    wire = LineCodec.PCM16.encode(np.array([1, -2, 300], dtype=np.int16))
    parts = [dec.decode(wire[:3]), dec.decode(wire[3:5]), dec.decode(wire[5:])]
    assert np.concatenate(parts).tolist() == [1, -2, 300]
