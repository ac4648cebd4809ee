"""Tests of the Twilio channel (``channels/twilio``).

pytest imports test files in importlib mode with ``tests/`` as their root
(there is no ``tests/__init__.py``), so this package may be imported under the
name ``channels.twilio``: the very name of the package it tests, which it
would hide from everything imported afterwards (the daemon included). When
that happens the real package's directory joins this package's search path,
so ``channels.twilio.<module>`` still finds the channel's modules (no module
name here clashes with one of theirs).
"""

from pathlib import Path

if __name__ == "channels.twilio":
    _REAL = str(Path(__file__).resolve().parents[3] / "channels" / "twilio")
    if _REAL not in __path__:
        __path__.append(_REAL)
