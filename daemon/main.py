"""``secretaryd --config PATH``: the daemon in the foreground (systemd Type=notify).

It tightens the process umask first (``channels.standalone.private_umask``,
0027 as the unit's ``UMask``), so call records, the SQLite index and files
with secrets are not world-readable when the daemon is started by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from importlib import metadata
from pathlib import Path

from channels.standalone import private_umask
from config.errors import ConfigError
from config.loader import LoadedConfig, load_config

DEFAULT_CONFIG = Path("/etc/secretary/config.yaml")


def package_version() -> str:
    try:
        return metadata.version("ai-secretary-box")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


async def serve(loaded: LoadedConfig, config_path: Path | None) -> None:
    """Run the app on this event loop, whose thread also runs the line clock."""
    from daemon.runtime.heap_trace import trace_heap_from_env

    trace_heap_from_env(loaded.settings.data_dir / "run")  # SECRETARY_TRACEMALLOC (diagnostics): before the box loads
    from daemon.app import SecretaryApp  # the whole box: imported only to run it (--version stays light)
    from daemon.runtime.loop_priority import apply_loop_priority

    apply_loop_priority(loaded.settings.audio.realtime_priority)
    await SecretaryApp(loaded, config_path=config_path).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="secretaryd", description="AI Secretary box daemon")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help=f"config file (default {DEFAULT_CONFIG})")
    parser.add_argument("--version", action="version", version=f"secretaryd {package_version()}")
    args = parser.parse_args(argv)
    private_umask()
    try:
        loaded = load_config(args.config)
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        print(f"fix these and check again with: secretary config check {args.config}", file=sys.stderr)
        return 2
    from daemon.runtime.logging_setup import configure_logging

    configure_logging(loaded.settings.log)
    try:
        asyncio.run(serve(loaded, args.config))
    except OSError as exc:
        print(f"secretaryd: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
