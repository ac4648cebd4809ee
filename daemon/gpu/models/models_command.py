"""``secretary gpu models``: install, verify, import, export or pin the GPU models of the lock file.

::

    secretary gpu models                       fetch from the Hub (HF_ENDPOINT honoured), verify, move in
    secretary gpu models --from /media/stick   the same from a stick written by --export
    secretary gpu models --export /media/stick write such a stick from this box (verified first)
    secretary gpu models --verify              hash what is installed against the lock
    secretary gpu models --lock                pin the lock file's revisions, sizes and sha256 from the Hub
    ... --dry-run                              print every URL and file it would fetch or write, change nothing

The models directory is ``engines.models_dir`` of ``--config`` (or
``--models-dir``). Expected failures print one message saying what to do
and exit 1; nothing is half-done.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# huggingface_hub reads HF_HUB_OFFLINE when it is first imported: import it now, from the owner's environment,
# before the config brings in engines/stt, which sets HF_HUB_OFFLINE=1 for the daemon (whose engines never ask the Hub).
from daemon.gpu.models import hub_fetch  # noqa: F401, I001
from daemon.gpu.models.model_errors import ModelInstallError
from daemon.gpu.models.model_lock import LockError, ModelLock, default_lock_path, load_lock, write_lock

DEFAULT_CONFIG = Path("/etc/secretary/config.yaml")


def add_models_arguments(parser: argparse.ArgumentParser) -> None:
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--from", dest="from_dir", type=Path, metavar="DIR",
                        help="import the models from DIR (a stick written by --export) instead of the Hub")
    action.add_argument("--export", type=Path, metavar="DIR", help="write the installed models and the lock file to DIR")
    action.add_argument("--verify", action="store_true", help="check every installed file's sha256 against the lock")
    action.add_argument("--lock", action="store_true",
                        help="pin the lock file's revisions, sizes and sha256 from the Hub's metadata (needs the Hub)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="the config naming engines.models_dir")
    parser.add_argument("--models-dir", type=Path, default=None, help="the models directory (default: from --config)")
    parser.add_argument("--lock-file", type=Path, default=None, help=f"the lock file (default: {default_lock_path()})")
    parser.add_argument("--only", action="append", metavar="NAME", help="only this model of the lock (repeatable)")
    parser.add_argument("--endpoint", default=None, help="the Hub or mirror URL (default: HF_ENDPOINT, else huggingface.co)")
    parser.add_argument("--dry-run", action="store_true", help="print every URL and file it would fetch or write")
    parser.add_argument("--allow-unverified", action="store_true",
                        help="also install models the lock does not pin, checked only against the Hub's own hashes")


def run_models(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (ModelInstallError, LockError) as exc:
        print(f"secretary gpu models: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("secretary gpu models: stopped; run it again to continue where it stopped", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    lock_path = args.lock_file or default_lock_path()
    full = load_lock(lock_path)
    lock = full.select(args.only)
    if args.lock:
        return _pin(full, lock, args)
    models_dir = args.models_dir or _models_dir_of(args.config)
    if args.verify:
        return _verify(lock, models_dir)
    if args.export is not None:
        from daemon.gpu.models.model_export import export_models

        export_models(lock, models_dir, args.export, dry_run=args.dry_run, allow_unverified=args.allow_unverified)
        return 0
    from daemon.gpu.models.model_install import install_models

    ready = install_models(lock, models_dir, from_dir=args.from_dir, endpoint=args.endpoint, dry_run=args.dry_run,
                           allow_unverified=args.allow_unverified)
    if not args.dry_run:
        print(f"{len(ready)} model(s) ready in {models_dir}")
    return 0


def _pin(full: ModelLock, lock: ModelLock, args: argparse.Namespace) -> int:
    from daemon.gpu.models.lock_pin import pin_lock

    pinned = pin_lock(lock, endpoint=args.endpoint)
    for entry in pinned.models:
        full = full.with_entry(entry)
    if args.dry_run:
        print(f"would write {full.path}")
        return 0
    write_lock(full, full.path)
    print(f"wrote {full.path}: commit it so every box installs the same files")
    return 0


def _verify(lock: ModelLock, models_dir: Path) -> int:
    from daemon.gpu.models.file_checks import marker_files, verify_files

    failed = 0
    for entry in lock.models:
        directory = models_dir / entry.target
        if not directory.is_dir():
            print(f"MISSING {entry.name}: {directory} does not exist (install it with `secretary gpu models`)")
            failed += 1
            continue
        files = list(entry.files) if entry.pinned else (marker_files(directory) or list(entry.files))
        problems, _ = verify_files(files, directory, f"verify {entry.name}")
        if problems:
            print(f"BAD     {entry.name}: {'; '.join(problems)} (reinstall with `secretary gpu models`)")
            failed += 1
        else:
            how = "matches the lock" if entry.pinned else "matches the hashes seen at install (the lock does not pin it)"
            print(f"OK      {entry.name}: {directory} {how}")
    return 1 if failed else 0


def _models_dir_of(config_path: Path) -> Path:
    from config.errors import ConfigError
    from config.loader import load_config
    from daemon.engine_host.engine_wiring import models_dir_of

    try:
        cfg = load_config(config_path).settings
    except ConfigError as exc:
        raise ModelInstallError(f"cannot read the config for engines.models_dir ({config_path}): {exc.render()}; "
                                "or name the directory with --models-dir") from None
    return models_dir_of(cfg.engines, cfg.data_dir)
