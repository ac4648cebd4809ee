"""Run the widget server as its own process: ``python -m channels.widget --config PATH``.

Inside ``secretaryd`` it runs as a supervised service; on its own it needs
only the broker.
"""

from __future__ import annotations

from channels.bus_contract.clients import WIDGET, bus_login
from channels.standalone import StandaloneChannel, run_standalone
from channels.widget.widget_channel import WidgetChannel
from config.loader import LoadedConfig


def build(loaded: LoadedConfig) -> StandaloneChannel | str:
    cfg = loaded.settings
    if not cfg.channels.widget.widgets:
        return "channels.widget.widgets is empty; nothing to serve"
    return WidgetChannel(cfg, bus_login(cfg.mqtt, WIDGET, loaded.secret))


def main(argv: list[str] | None = None) -> int:
    return run_standalone("widget", __doc__.splitlines()[0], argv, build)


if __name__ == "__main__":
    raise SystemExit(main())
