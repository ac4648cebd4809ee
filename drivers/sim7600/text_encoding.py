"""Character sets of SMS text mode: hex UCS-2 (``AT+CSCS="UCS2"``) and GSM 7-bit.

With ``AT+CSCS="UCS2"`` every string parameter and message body on the AT
port is the hex of its UTF-16BE code units (sim7600.md §6), which is the only
text-mode charset that carries Cyrillic both ways.
"""

from __future__ import annotations

import string
from typing import Final

#: GSM 03.38 default alphabet, basic table only (no escape-table characters).
GSM7_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_HEX: Final = frozenset(string.hexdigits)

#: Single-part limits: 160 GSM 7-bit characters, 70 UCS-2 code units.
GSM7_SINGLE_SMS_CHARS: Final = 160
UCS2_SINGLE_SMS_UNITS: Final = 70


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC for ch in text)


def ucs2_hex_encode(text: str) -> str:
    return text.encode("utf-16-be").hex().upper()


def ucs2_hex_decode(text: str) -> str | None:
    """Decode hex UCS-2, or None when ``text`` is not hex UCS-2."""
    if not text or len(text) % 4 or not all(ch in _HEX for ch in text):
        return None
    return bytes.fromhex(text).decode("utf-16-be", errors="replace")


def ucs2_units(text: str) -> int:
    return len(text.encode("utf-16-be")) // 2


__all__ = [
    "GSM7_BASIC",
    "GSM7_SINGLE_SMS_CHARS",
    "UCS2_SINGLE_SMS_UNITS",
    "is_gsm7",
    "ucs2_hex_decode",
    "ucs2_hex_encode",
    "ucs2_units",
]
