"""Tests of the website chat widget channel.

pytest (``--import-mode=importlib``, no ``tests/__init__.py``) imports this
folder as the package ``channels.widget``, where it hides the real
``channels/widget`` from the tests' ``from channels.widget.x import y``.
When that happens, the real package's folder joins this package's search
path, so those imports reach the real modules. Helpers here are imported as
``tests.channels.widget.<name>`` and are named unlike any real module.
"""

from pathlib import Path

if __name__ == "channels.widget":
    __path__.append(str(Path(__file__).resolve().parents[3] / "channels" / "widget"))  # noqa: F821
