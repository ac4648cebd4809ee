"""Tests of the remote MQTT bridge (``channels/remote_bridge``).

pytest imports test files in importlib mode with ``tests/`` as their root
(there is no ``tests/__init__.py``), so this package may be imported under the
name ``channels.remote_bridge``, hiding the real package. When that happens
the real package's directory joins this package's search path, so
``channels.remote_bridge.<module>`` still finds the bridge's modules. Helpers
here are imported as ``tests.channels.remote_bridge.<name>`` and are named
unlike any real module.
"""

from pathlib import Path

if __name__ == "channels.remote_bridge":
    _REAL = str(Path(__file__).resolve().parents[3] / "channels" / "remote_bridge")
    if _REAL not in __path__:
        __path__.append(_REAL)  # noqa: F821
