"""``secretary``: the owner's command line (config check, demo, doctor, web password, mqtt users, vllm serve, gpu)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from channels.standalone import private_umask
from config.errors import ConfigError
from config.loader import load_config, load_settings

DEFAULT_CONFIG = Path("/etc/secretary/config.yaml")
DEFAULT_BROKER_USERS = Path("/etc/mosquitto/secretary")  # image/files/mosquitto-secretary.conf reads them here
DEFAULT_CREDENTIALS = Path("/etc/secretary/mqtt-credentials.env")


def _config_check(args: argparse.Namespace) -> int:
    try:
        loaded = load_config(args.path)
    except ConfigError as exc:
        print(exc.render())
        return 1
    cfg = loaded.settings
    print(f"{args.path}: OK (box_id {cfg.box_id}, modem {cfg.modem.driver}, broker {cfg.mqtt.host}:{cfg.mqtt.port})")
    if cfg.channels.remote.cleartext_warning:
        print(f"warning: {cfg.channels.remote.cleartext_warning}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from daemon.tools.demo import run_demo

    return asyncio.run(run_demo(data_dir=args.data_dir, language=args.lang))


def _doctor(args: argparse.Namespace) -> int:
    from daemon.tools.doctor import run_doctor

    return asyncio.run(run_doctor(args.config))


def _web_password(args: argparse.Namespace) -> int:
    """Set the web page's password: typed twice on a terminal, or one line on stdin (for scripts)."""
    import getpass

    from daemon.web.auth import PasswordError, PasswordStore
    from daemon.web.web_service import password_path

    try:
        data_dir = load_config(args.config).settings.data_dir
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        return 1
    if sys.stdin.isatty():
        password = getpass.getpass("New web password: ")
        if getpass.getpass("Again: ") != password:
            print("The two passwords differ; nothing changed.", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    store = PasswordStore(password_path(data_dir))
    try:
        store.set_password(password, generated=args.generated)
    except PasswordError as exc:
        print(f"Not changed: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"Not changed: cannot write {password_path(data_dir)}: {exc}", file=sys.stderr)
        return 1
    print(f"The web password is set ({password_path(data_dir)}); open sessions are signed out within a few seconds.")
    return 0


def _mqtt_users(args: argparse.Namespace) -> int:
    """Write the box broker's users (password and ACL files) and the box's credentials file for this config."""
    from channels.bus_contract.topics import Topics
    from daemon.tools.broker_users import BrokerUsersError, write_broker_users

    try:
        cfg = load_settings(args.config)  # secrets not read: the credentials file may not exist yet
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        return 1
    credentials = args.credentials or cfg.mqtt.credentials_file or DEFAULT_CREDENTIALS
    try:
        users = write_broker_users(args.out, Topics(cfg.mqtt.topic_prefix, cfg.box_id), credentials, rotate=args.rotate)
    except BrokerUsersError as exc:
        print(f"Not written: {exc}", file=sys.stderr)
        return 1
    fresh = ", ".join(users.created) or "none (existing passwords kept)"
    print(f"broker users for {cfg.mqtt.topic_prefix}/{cfg.box_id}/: new passwords: {fresh}")
    print(f"  mosquitto: password_file {users.password_file}\n  mosquitto: acl_file {users.acl_file}")
    print(f"  the box's processes: mqtt.credentials_file: {users.credentials_file}"
          + ("" if cfg.mqtt.credentials_file == credentials else "  (not yet in the config: add it)"))
    print("  restart mosquitto (or send it SIGHUP) to apply them")
    return 0


def _vllm_serve(args: argparse.Namespace) -> int:
    """Become the vLLM server of the config's vllm backend (secretary-vllm.service runs this)."""
    import os

    from config.engines_schema import VllmConfig
    from daemon.engine_host.engine_wiring import llm_settings, models_dir_of
    from engines.llm.vllm_process import vllm_command

    try:
        cfg = load_config(args.config).settings
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        return 1
    vllm = {name: b for name, b in cfg.engines.llm.backends.items() if isinstance(b, VllmConfig)}
    name = args.backend or (next(iter(vllm)) if len(vllm) == 1 else None)
    if name is None or name not in vllm:
        known = ", ".join(sorted(vllm)) or "none"
        print(f"name the vllm backend with --backend (vllm backends in the config: {known})", file=sys.stderr)
        return 1
    command = vllm_command(llm_settings(vllm[name]), models_dir_of(cfg.engines, cfg.data_dir), args.port)  # type: ignore[arg-type]
    if args.print:
        print(" ".join(command.argv))
        return 0
    try:
        os.execvpe(command.argv[0], list(command.argv), dict(command.env))
    except OSError as exc:
        print(f"cannot start {command.argv[0]}: {exc}", file=sys.stderr)
        return 1
    return 0  # not reached


def _gpu_setup(args: argparse.Namespace) -> int:
    # The gpu commands parse their own options: their modules (huggingface_hub, NVML) load only when used,
    # so the light image's `secretary config check` and `web password` do not need them.
    from daemon.gpu.setup_command import add_setup_arguments, run_setup

    parser = argparse.ArgumentParser(prog="secretary gpu setup", description=GPU_SETUP_HELP)
    add_setup_arguments(parser)
    return run_setup(parser.parse_args(args.options))


def _gpu_models(args: argparse.Namespace) -> int:
    from daemon.gpu.models.models_command import add_models_arguments, run_models

    parser = argparse.ArgumentParser(prog="secretary gpu models", description=GPU_MODELS_HELP)
    add_models_arguments(parser)
    return run_models(parser.parse_args(args.options))


GPU_SETUP_HELP = "install the GPU engines and models, write a profile that fits, start them (--help: its options)"
GPU_MODELS_HELP = "fetch, verify, import or export the GPU models of the lock file (--help: its options)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="secretary", description="AI Secretary box command line")
    sub = parser.add_subparsers(dest="command", required=True)

    config = sub.add_parser("config", help="work with config files")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a config file and explain every error")
    check.add_argument("path", type=Path)
    check.set_defaults(func=_config_check)

    demo = sub.add_parser("demo", help="run the main job on this machine with embedded defaults")
    demo.add_argument("--data-dir", type=Path, default=None,
                      help="where models, the phrase cache and call records go (default: data_dir of config/default.yaml)")
    demo.add_argument("--lang", choices=("en", "ru"), default="en",
                      help="the caller's language and the persona who answers (default en: the best packaged voice)")
    demo.set_defaults(func=_demo)

    doctor = sub.add_parser("doctor", help="check modem, ports, models, GPU, broker, disk")
    doctor.add_argument("--config", type=Path, default=Path("/etc/secretary/config.yaml"))
    doctor.set_defaults(func=_doctor)

    web = sub.add_parser("web", help="the local web page")
    web_sub = web.add_subparsers(dest="web_command", required=True)
    password = web_sub.add_parser("password", help="set the web page's password (read from the terminal or stdin)")
    password.add_argument("--config", type=Path, default=Path("/etc/secretary/config.yaml"))
    password.add_argument("--generated", action="store_true",
                          help="mark it as generated (first boot), so `secretary doctor` warns until the owner sets one")
    password.set_defaults(func=_web_password)

    mqtt = sub.add_parser("mqtt", help="the box's MQTT broker")
    mqtt_sub = mqtt.add_subparsers(dest="mqtt_command", required=True)
    users = mqtt_sub.add_parser(
        "users", help="write the broker's users and ACL (one user per client) and the box's credentials file")
    users.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    users.add_argument("--out", type=Path, default=DEFAULT_BROKER_USERS,
                       help=f"where mosquitto's passwd and acl go (default {DEFAULT_BROKER_USERS})")
    users.add_argument("--credentials", type=Path, default=None,
                       help=f"the 0600 file of the box's passwords (default: mqtt.credentials_file, else "
                            f"{DEFAULT_CREDENTIALS})")
    users.add_argument("--rotate", action="store_true", help="new passwords for every user")
    users.set_defaults(func=_mqtt_users)

    vllm = sub.add_parser("vllm", help="the local GPU LLM server")
    vllm_sub = vllm.add_subparsers(dest="vllm_command", required=True)
    serve = vllm_sub.add_parser("serve", help="run vLLM for the config's vllm backend (what secretary-vllm.service runs)")
    serve.add_argument("--config", type=Path, default=Path("/etc/secretary/config.yaml"))
    serve.add_argument("--backend", default=None, help="the vllm backend's name (default: the only one)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--print", action="store_true", help="print the command line instead of running it")
    serve.set_defaults(func=_vllm_serve)

    gpu = sub.add_parser("gpu", help="turn this box into the GPU secretary (engines, models, profile, units)")
    gpu_sub = gpu.add_subparsers(dest="gpu_command", required=True)
    for name, help_text, func in (("setup", GPU_SETUP_HELP, _gpu_setup), ("models", GPU_MODELS_HELP, _gpu_models)):
        gpu_sub.add_parser(name, help=help_text, add_help=False).set_defaults(func=func, options=[])
    return parser


def main(argv: list[str] | None = None) -> int:
    args, rest = build_parser().parse_known_args(argv)
    if rest and getattr(args, "command", None) != "gpu":
        build_parser().error(f"unrecognized arguments: {' '.join(rest)}")
    args.options = rest  # a gpu command's own options (parsed by it)
    private_umask()  # what the tools write (a demo's records, keys, credentials) is not world-readable
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
