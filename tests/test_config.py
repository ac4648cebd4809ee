"""Typed config: every kind of bad input gets a message a person can act on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.loader import bundled_config_text, load_config, parse_config_text

REPO = Path(__file__).resolve().parent.parent


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config_text(text, "test.yaml", environ or {})
    return [str(issue) for issue in caught.value.issues]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # 1. wrong type with range, the issue's own example
        ("box_id: b\nmodem:\n  answer_after_rings: two\n",
         'modem.answer_after_rings: must be an integer from 0 to 10, got "two" (line 3)'),
        # 2. out of range
        ("box_id: b\nmodem:\n  answer_after_rings: 11\n",
         "modem.answer_after_rings: must be an integer from 0 to 10, got 11 (line 3)"),
        # 3. not one of the allowed values
        ("box_id: b\nmodem:\n  driver: sim7601\n",
         "modem.driver: must be one of 'sim7600', 'simulator', got \"sim7601\" (line 3)"),
        # 4. required key missing
        ("data_dir: /tmp\n", "box_id: is required: a name for this box"),
        # 5. unknown key with a suggestion
        ("box_id: b\nmodme:\n  driver: simulator\n", "modme: unknown key; did you mean 'modem'?"),
        # 6. secret written in YAML
        ("box_id: b\nmqtt:\n  password: hunter2\n", "mqtt.password: secrets must not be written in the YAML file"),
        # 7. bad URL scheme
        ("box_id: b\nmqtt:\n  url: http://broker\n", 'mqtt.url: must start with mqtt:// or mqtts://, got "http://broker" (line 3)'),
        # 8. bad listen address
        ("box_id: b\nweb:\n  listen: 8080\n", "web.listen: must be host:port, e.g. 127.0.0.1:8080"),
        # 9. a section that is not a mapping
        ("box_id: b\nmodem: yes\n", "modem: must be a mapping with keys driver, at_port"),
        # 10. characters that would break MQTT topics
        ("box_id: 'my/box+'\n", "box_id: must be a name for this box: letters, digits"),
        # 11. YAML syntax error with its line
        ("box_id: b\nmodem: [driver\n", "YAML syntax:"),
        # 12. duplicate key
        ("box_id: a\nbox_id: b\n", "YAML syntax: duplicate key 'box_id' (first at line 1) (line 2)"),
        # 13. top level not a mapping
        ("- box_id\n", "the top level must be a mapping"),
        # 14. negative number where positive is required
        ("box_id: b\nsupervisor:\n  backoff_max_s: -1\n", "supervisor.backoff_max_s: must be a number greater than 0 and at most 3600, got -1"),
        # 15. log level in a mapping
        ("box_id: b\nlog:\n  levels:\n    bus: loud\n", "log.levels.bus: must be one of 'debug', 'info'"),
        # 16. password inside the URL
        ("box_id: b\nmqtt:\n  url: mqtt://u:secret@host:1883\n", "mqtt.url: must not contain a password"),
        # 17. port out of range
        ("box_id: b\nmqtt:\n  url: mqtt://host:70000\n", "mqtt.url: has an invalid port"),
        # 18. env var name that is not one
        ("box_id: b\nmqtt:\n  password_env: my password\n", "mqtt.password_env: must be an environment variable name"),
    ],
)
def test_bad_input_is_explained(text: str, expected: str) -> None:
    found = problems(text)
    assert any(expected in p for p in found), found


def test_all_errors_reported_at_once() -> None:
    found = problems(
        "box_id: b\nmodem:\n  answer_after_rings: two\n  driver: x\nmqtt:\n  url: ftp://h\nweb:\n  listen: nope\nbogus: 1\n"
    )
    assert len(found) == 5, found


def test_secret_never_echoed() -> None:
    found = problems("box_id: b\nmqtt:\n  password: hunter2\n")
    assert not any("hunter2" in p for p in found)


def test_defaults_and_example_are_valid() -> None:
    default = parse_config_text(bundled_config_text("default.yaml"), "default.yaml", {})
    assert default.settings.modem.driver == "simulator"
    example = load_config(REPO / "config" / "example.yaml", {})
    assert example.settings.modem.driver == "sim7600"
    assert example.settings.mqtt.port == 1883


def test_values_typed() -> None:
    loaded = parse_config_text("box_id: b\nmqtt:\n  url: mqtts://broker.lan\nweb:\n  listen: '[::1]:9000'\n", "t", {})
    cfg = loaded.settings
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.tls) == ("broker.lan", 8883, True)
    assert (cfg.web.host, cfg.web.port) == ("::1", 9000)
    with pytest.raises(Exception):
        cfg.box_id = "other"  # type: ignore[misc]  # frozen


def test_env_file_secrets(tmp_path: Path) -> None:
    env_file = tmp_path / "secrets.env"
    env_file.write_text("# comment\nexport SECRETARY_MQTT_PASSWORD='s3 cret'\nSECRETARY_SIM_PIN=1234\n")
    env_file.chmod(0o600)
    loaded = parse_config_text(f"box_id: b\nsecrets_file: {env_file}\n", "t", {"SECRETARY_SIM_PIN": "9999"})
    assert loaded.secret("SECRETARY_MQTT_PASSWORD") == "s3 cret"
    assert loaded.secret("SECRETARY_SIM_PIN") == "9999"  # environment wins
    assert "s3 cret" not in repr(loaded.secrets)


def test_env_file_readable_by_others_refused(tmp_path: Path) -> None:
    env_file = tmp_path / "secrets.env"
    env_file.write_text("SECRETARY_MQTT_PASSWORD=x\n")
    env_file.chmod(0o644)
    found = problems(f"box_id: b\nsecrets_file: {env_file}\n")
    assert any(f"readable by other users (mode 0644); run: chmod 600 {env_file}" in p for p in found), found


def test_env_file_bad_line_not_echoed(tmp_path: Path) -> None:
    env_file = tmp_path / "secrets.env"
    env_file.write_text("SECRETARY_OK=1\nthis is hunter2\n")
    env_file.chmod(0o600)
    found = problems(f"box_id: b\nsecrets_file: {env_file}\n")
    assert any("line 2: expected NAME=value" in p for p in found)
    assert not any("hunter2" in p for p in found)


def test_missing_file() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config("/nonexistent/config.yaml", {})
    assert "file not found" in caught.value.render()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "daemon.cli", *args], capture_output=True, text=True, env=env, timeout=60)


def test_config_check_cli(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("box_id: b\nmodem:\n  answer_after_rings: two\n  driver: x\nbogus: 1\n")
    result = _cli("config", "check", str(bad))
    assert result.returncode != 0
    assert "3 problems" in result.stdout
    assert 'modem.answer_after_rings: must be an integer from 0 to 10, got "two"' in result.stdout
    assert "bogus: unknown key" in result.stdout
    good = _cli("config", "check", str(REPO / "config" / "example.yaml"))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "OK" in good.stdout


# -- engines section ---------------------------------------------------------


def _engine_issues(yaml_text: str) -> dict[str, str]:
    from config.errors import ConfigError
    from config.loader import parse_config_text

    try:
        parse_config_text("box_id: t\n" + yaml_text, source="test.yaml")
    except ConfigError as error:
        return {issue.path: issue.message for issue in error.issues}
    return {}


def test_engines_defaults_are_the_cpu_stack() -> None:
    from config.loader import parse_config_text

    engines = parse_config_text("box_id: t\n", source="test.yaml").settings.engines
    assert engines.vad.chain == ["silero", "webrtc"]
    assert engines.stt.chain == ["faster-whisper"] and engines.stt.faster_whisper.model == "packaged:whisper-base"
    assert engines.llm.chain == ["local"] and engines.llm.backends["local"].kind == "llama_cpp"
    assert engines.tts.chain == ["piper", "rhvoice", "espeak"] and engines.tts.piper.voices == {"en": "packaged:joe-us"}
    assert engines.tts.rhvoice.voices == {"ru": "irina"}  # Russian speaks RHVoice on every box


def test_engines_errors_name_the_key_and_what_is_allowed() -> None:
    issues = _engine_issues(
        "engines:\n"
        "  stt: {chain: [faster-whisper, vosk]}\n"
        "  vad: {chain: [silero, silero]}\n"
        "  llm:\n"
        "    chain: [local, cloud]\n"
        "    backends:\n"
        "      local: {kind: llama_cpp, n_threads: 0}\n"
        "      box: {kind: vllmm}\n"
        "      nokind: {model: x}\n"
        "  tts:\n"
        "    chain: [piper, festival]\n"
        "    piper: {voices: {english: x}}\n"
    )
    assert "vosk.model is not set" in issues["engines.stt"]
    assert "'silero' twice" in issues["engines.vad"]
    assert issues["engines.llm.backends.local.n_threads"] == "must be an integer from 1 to 64, got 0"
    assert issues["engines.llm.backends.box"].startswith("kind must be one of 'llama_cpp', 'vllm'")
    assert "vllmm" in issues["engines.llm.backends.box"]
    assert issues["engines.llm.backends.nokind"].startswith("kind must be one of")
    assert "festival" in issues["engines.tts.chain[1]"]
    assert "two-letter language code" in issues["engines.tts.piper.voices.english"]


def test_llm_chain_must_name_defined_backends() -> None:
    issues = _engine_issues("engines:\n  llm:\n    chain: [cloud]\n")
    assert issues["engines.llm"] == "chain names 'cloud', which is not defined under backends (defined: local)"
    issues = _engine_issues(
        "engines:\n  llm:\n    chain: [c]\n    backends:\n      c: {kind: openai_compatible, model: m}\n"
    )
    assert "base_url is required" in issues["engines.llm.backends.c"]


def test_the_early_transcript_must_start_inside_the_endpoint_window() -> None:
    [problem] = problems("box_id: b\ncall:\n  endpoint_silence_ms: 400\n  early_stt_ms: 400\n")
    assert "early_stt_ms (400) must be below endpoint_silence_ms (400)" in problem and problem.startswith("call")
    # left at its default, it steps aside for a very short window instead of failing the config
    call = parse_config_text("box_id: b\ncall:\n  endpoint_silence_ms: 180\n", "test.yaml", {}).settings.call
    assert call.early_stt_ms == 0
    assert parse_config_text("box_id: b\n", "test.yaml", {}).settings.call.early_stt_ms == 200


def test_a_removed_key_says_what_replaced_it() -> None:
    """The VAD's silence and speech windows were overridden by the call's at every call: one key per meaning now."""
    found = problems(
        "box_id: b\nengines:\n  vad:\n    min_silence_ms: 700\n    min_speech_ms: 200\n    speech_pad_ms: 100\n"
    )
    assert found == [
        "engines.vad.min_silence_ms: was removed: the caller's silence that ends their turn is "
        "call.endpoint_silence_ms; delete it here (line 4)",
        "engines.vad.min_speech_ms: was removed: the caller's speech that stops the secretary is "
        "call.barge_in.min_speech_ms; delete it here (line 5)",
    ]
    vad = parse_config_text("box_id: b\nengines:\n  vad:\n    speech_pad_ms: 100\n", "test.yaml", {}).settings
    assert "min_silence_ms" not in type(vad.engines.vad).model_fields
