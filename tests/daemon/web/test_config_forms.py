"""Config forms: generated from the schema, posted values written back as minimal YAML edits."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel
from ruamel.yaml import YAML

from config.errors import ConfigIssue
from config.loader import LoadedConfig, bundled_config_text, parse_config_text
from config.schema import SecretaryConfig
from daemon.web.config_editor import ConfigEditor
from daemon.web.config_forms import (
    SECTIONS,
    FormField,
    FormSection,
    _mapping,
    _Shape,
    _Unconvertible,
    apply_form,
    build_form,
    field_errors,
)

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "config" / "example.yaml"

BOT_YAML = """\
box_id: bot-box
channels:
  telegram:
    bots:
      main:
        token_env: SECRETARY_TELEGRAM_TOKEN
        users: [123, 456]
        notify: []
"""


def _loaded(text: str, environ: dict[str, str] | None = None) -> LoadedConfig:
    return parse_config_text(text, "test.yaml", environ or {})


def _data(text: str) -> Any:
    document = YAML(typ="rt")
    document.preserve_quotes = True
    return document.load(text)


def _dump(data: Any) -> str:
    return ConfigEditor(EXAMPLE).dump(data)  # the editor's YAML settings (indent 2/4/2, null as null)


def _fields(section: FormSection) -> list[FormField]:
    return [*section.fields, *(f for child in section.sections for f in _fields(child))]


def _by_path(section: FormSection) -> dict[str, FormField]:
    return {f.path: f for f in _fields(section)}


def _post(section: FormSection) -> dict[str, str]:
    """What a browser posts for an untouched form."""
    form: dict[str, str] = {}
    for f in _fields(section):
        if f.kind == "checkbox":
            form[f"present:{f.path}"] = "1"
            if f.value:
                form[f.path] = "on"
        else:
            form[f.path] = str(f.value)
    return form


def _holds_models(annotation: Any) -> bool:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    members = [m for m in (typing.get_args(annotation) if union else (annotation,)) if m is not type(None)]
    return all(isinstance(m, type) and issubclass(m, BaseModel) for m in members)


def _model_leaves(model: BaseModel, prefix: str) -> list[str]:
    """Every field path below ``model``, walked independently of config_forms."""
    paths: list[str] = []
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        path = f"{prefix}.{name}"
        annotation = info.annotation
        if isinstance(value, BaseModel) and _holds_models(annotation):
            paths += _model_leaves(value, path)
        elif typing.get_origin(annotation) is dict and _holds_models(typing.get_args(annotation)[1]):
            for key, entry in value.items():
                paths += _model_leaves(entry, f"{path}.{key}")
        else:
            paths.append(path)
    return paths


def _section_leaves(settings: SecretaryConfig, section: str) -> list[str]:
    value = getattr(settings, section)
    if isinstance(value, dict):
        return [p for key, entry in value.items() for p in _model_leaves(entry, f"{section}.{key}")]
    return _model_leaves(value, section)


@pytest.fixture(scope="module")
def default() -> LoadedConfig:
    return _loaded(bundled_config_text())


@pytest.fixture(scope="module")
def example() -> LoadedConfig:
    return _loaded(EXAMPLE.read_text(encoding="utf-8"), {"SECRETARY_SIM_PIN": "4321"})


@pytest.mark.parametrize("which", ["default", "example", "bot"])
@pytest.mark.parametrize("section", SECTIONS)
def test_every_field_appears_once(which: str, section: str, default: LoadedConfig, example: LoadedConfig) -> None:
    loaded = {"default": default, "example": example, "bot": _loaded(BOT_YAML)}[which]
    form = build_form(loaded.settings, section, lambda _: False)
    paths = [f.path for f in _fields(form)]
    assert len(paths) == len(set(paths))
    assert sorted(paths) == sorted(_section_leaves(loaded.settings, section))
    assert form.path == section


def test_kinds_follow_the_types(example: LoadedConfig) -> None:
    fields: dict[str, FormField] = {}
    for section in SECTIONS:
        fields.update(_by_path(build_form(example.settings, section, lambda _: False)))
    kinds = {
        "modem.answer_after_rings": "integer",
        "modem.driver": "select",
        "modem.at_port": "text",
        "modem.blocked_numbers": "lines",
        "modem.pin_env": "env",
        "mqtt.username": "text",
        "mqtt.password_env": "env",
        "mqtt.reconnect_max_s": "number",
        "call.record_audio": "checkbox",
        "call.barge_in.enabled": "checkbox",
        "call.dtmf.leave_message": "text",
        "audio.realtime_priority": "integer",
        "log.levels": "mapping",
        "personas.lidia.system_prompt": "textarea",
        "personas.lidia.greeting": "textarea",
        "personas.lidia.display_name": "text",
        "personas.lidia.asks": "lines",
        "personas.lidia.voice.tts": "lines",
        "personas.lidia.voice.preset": "select",
        "engines.models_dir": "text",
        "engines.tts.xtts.python": "text",
        "engines.tts.xtts.voices": "yaml",
        "engines.tts.piper.voices": "mapping",
        "engines.tts.piper.in_worker": "checkbox",
        "engines.llm.backends.local.kind": "select",
        "engines.llm.backends.local.conversational": "select",
    }
    assert {path: fields[path].kind for path in kinds} == kinds
    assert fields["modem.answer_after_rings"].value == "2"
    assert fields["modem.answer_after_rings"].help == "an integer from 0 to 10"
    assert fields["modem.at_port"].help == "a device path like /dev/ttyUSB2, or 'auto'"
    assert fields["modem.driver"].choices == ("sim7600", "simulator")
    assert fields["modem.blocked_numbers"].value == ""
    assert fields["mqtt.reconnect_max_s"].value == "10"
    assert fields["mqtt.username"].nullable and not fields["mqtt.url"].nullable
    assert fields["mqtt.client_id"].value == ""
    assert fields["call.record_audio"].value is True
    assert fields["log.levels"].value == "secretary.bus: info"
    assert fields["personas.lidia.voice.preset"].choices == ("", "warm", "calm", "energetic", "natural", "neutral")
    assert fields["personas.lidia.voice.tts"].value == "xtts\npiper\nespeak"
    assert fields["engines.llm.backends.local.conversational"].choices == ("", "true", "false")
    assert fields["engines.tts.xtts.voices"].value == "{}"
    assert fields["modem.pin_env"].name == "pin_env"


def test_personas_are_subsections(example: LoadedConfig) -> None:
    form = build_form(example.settings, "personas", lambda _: False)
    assert form.fields == ()
    entries = {s.path: s for s in form.sections}
    assert {"personas.lidia", "personas.gulya"} <= set(entries)
    assert entries["personas.lidia"].title == "lidia"
    assert [s.path for s in entries["personas.lidia"].sections] == ["personas.lidia.voice", "personas.lidia.llm"]


def test_env_fields_tell_whether_set_never_the_value(example: LoadedConfig) -> None:
    asked: list[str] = []

    def is_set(name: str) -> bool:
        asked.append(name)
        return example.secret(name) is not None

    modem = _by_path(build_form(example.settings, "modem", is_set))
    mqtt = _by_path(build_form(example.settings, "mqtt", is_set))
    assert modem["modem.pin_env"].value == "SECRETARY_SIM_PIN"
    assert modem["modem.pin_env"].secret_set is True
    assert mqtt["mqtt.password_env"].secret_set is False
    assert "SECRETARY_SIM_PIN" in asked
    assert "4321" not in repr(modem) + repr(mqtt)
    assert modem["modem.answer_after_rings"].secret_set is None


def test_telegram_bot_fields() -> None:
    loaded = _loaded(BOT_YAML)
    fields = _by_path(build_form(loaded.settings, "channels", lambda name: name == "SECRETARY_TELEGRAM_TOKEN"))
    assert fields["channels.telegram.bots.main.users"].kind == "lines"
    assert fields["channels.telegram.bots.main.users"].value == "123\n456"
    assert fields["channels.telegram.bots.main.notify"].value == "[]"  # "" would mean null: all users
    assert fields["channels.telegram.bots.main.token_env"].secret_set is True
    assert fields["channels.telegram.bots.main.voice_replies"].kind == "checkbox"


def test_unknown_section_is_refused(default: LoadedConfig) -> None:
    with pytest.raises(ValueError, match="unknown config section"):
        build_form(default.settings, "box_id", lambda _: False)


# -- apply_form ---------------------------------------------------------------------


def test_changing_one_integer_writes_only_that_key(example: LoadedConfig) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    data = _data(text)
    form = _post(build_form(example.settings, "modem", lambda _: False))
    form["modem.answer_after_rings"] = "5"
    secrets, issues = apply_form(data, "modem", form, example.settings)
    assert (secrets, issues) == ({}, [])
    changed = [(a, b) for a, b in zip(text.splitlines(), _dump(data).splitlines(), strict=True) if a != b]
    assert changed == [("  answer_after_rings: 2  # 0..10", "  answer_after_rings: 5  # 0..10")]


@pytest.mark.parametrize("section", SECTIONS)
def test_an_untouched_form_writes_nothing(section: str, default: LoadedConfig) -> None:
    text = bundled_config_text()
    data = _data(text)
    form = _post(build_form(default.settings, section, lambda _: False))
    assert apply_form(data, section, form, default.settings) == ({}, [])
    assert _dump(data) == text


def test_an_untouched_example_form_writes_nothing(example: LoadedConfig) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    data = _data(text)
    for section in SECTIONS:
        apply_form(data, section, _post(build_form(example.settings, section, lambda _: False)), example.settings)
    assert _dump(data) == text


def test_default_values_are_not_written_where_absent(default: LoadedConfig) -> None:
    data = _data(bundled_config_text())
    form = {"call.max_duration_s": "300", "call.retention_days": "90.0", "engines.llm.max_tokens": "200"}
    apply_form(data, "call", form, default.settings)
    apply_form(data, "engines", form, default.settings)
    assert "call" not in data and "engines" not in data


def test_new_sections_are_created_in_schema_order(default: LoadedConfig) -> None:
    data = _data(bundled_config_text())
    _, issues = apply_form(data, "engines", {"engines.llm.max_tokens": "300"}, default.settings)
    assert issues == []
    assert data["engines"]["llm"]["max_tokens"] == 300
    assert parse_config_text(_dump(data), "new.yaml", {}).settings.engines.llm.max_tokens == 300


def test_unconvertible_values_become_issues(example: LoadedConfig) -> None:
    data = _data(EXAMPLE.read_text(encoding="utf-8"))
    form = {"modem.answer_after_rings": "two", "modem.driver": "usb", "modem.at_port": "/dev/ttyUSB2"}
    secrets, issues = apply_form(data, "modem", form, example.settings)
    assert secrets == {}
    assert issues == [
        ConfigIssue("modem.driver", "must be one of 'sim7600', 'simulator', got \"usb\""),
        ConfigIssue("modem.answer_after_rings", 'must be an integer from 0 to 10, got "two"'),
    ]
    assert data["modem"]["answer_after_rings"] == 2
    assert data["modem"]["at_port"] == "/dev/ttyUSB2"  # the fields that converted are still written


def test_numbers_parse(example: LoadedConfig) -> None:
    data = _data(EXAMPLE.read_text(encoding="utf-8"))
    form = {"mqtt.reconnect_max_s": "2.5", "mqtt.command_timeout_s": "20", "mqtt.keepalive_s": "1.5"}
    _, issues = apply_form(data, "mqtt", form, example.settings)
    assert data["mqtt"]["reconnect_max_s"] == 2.5
    assert data["mqtt"]["command_timeout_s"] == 20 and isinstance(data["mqtt"]["command_timeout_s"], int)
    assert [i.path for i in issues] == ["mqtt.keepalive_s"]


def test_nullable_fields_take_empty_as_null(example: LoadedConfig) -> None:
    data = _data(EXAMPLE.read_text(encoding="utf-8"))
    form = {"mqtt.username": " ", "mqtt.client_id": ""}
    apply_form(data, "mqtt", form, example.settings)
    assert data["mqtt"]["username"] is None
    assert "client_id" not in data["mqtt"]  # null already
    apply_form(data, "web", {"web.listen": ""}, example.settings)
    assert data["web"]["listen"] == ""  # not nullable: left for validation to refuse
    apply_form(data, "personas", {"personas.lidia.voice.preset": ""}, example.settings)
    assert data["personas"]["lidia"]["voice"]["preset"] is None


def test_lines_parse_to_lists(example: LoadedConfig) -> None:
    data = _data(EXAMPLE.read_text(encoding="utf-8"))
    _, issues = apply_form(data, "modem", {"modem.blocked_numbers": " +7 900 \r\n\r\n+44\n"}, example.settings)
    assert issues == []
    assert data["modem"]["blocked_numbers"] == ["+7 900", "+44"]
    apply_form(data, "personas", {"personas.lidia.voice.tts": ""}, example.settings)
    assert data["personas"]["lidia"]["voice"]["tts"] is None


def test_lines_of_integers_and_null_versus_empty() -> None:
    loaded = _loaded(BOT_YAML)
    data = _data(BOT_YAML)
    form = _post(build_form(loaded.settings, "channels", lambda _: False))
    assert apply_form(data, "channels", form, loaded.settings) == ({}, [])
    assert _dump(data) == BOT_YAML
    bot = "channels.telegram.bots.main"
    _, issues = apply_form(data, "channels", {f"{bot}.users": "123\n456\n789", f"{bot}.notify": ""}, loaded.settings)
    assert issues == []
    assert data["channels"]["telegram"]["bots"]["main"]["users"] == [123, 456, 789]
    assert data["channels"]["telegram"]["bots"]["main"]["notify"] is None
    _, issues = apply_form(data, "channels", {f"{bot}.users": "123\nbob"}, loaded.settings)
    assert issues == [ConfigIssue(f"{bot}.users", 'line 2: must be a numeric Telegram user id, got "bob"')]


def test_mapping_lines(example: LoadedConfig) -> None:
    data = _data(EXAMPLE.read_text(encoding="utf-8"))
    form = {"log.levels": "secretary.bus: debug\nbus:   warning\n"}
    assert apply_form(data, "log", form, example.settings) == ({}, [])
    assert dict(data["log"]["levels"]) == {"secretary.bus": "debug", "bus": "warning"}
    form = {"engines.tts.espeak.voices": "en: en-us\nnb: no\nsp: ' padded '"}
    apply_form(data, "engines", form, example.settings)
    assert dict(data["engines"]["tts"]["espeak"]["voices"]) == {"en": "en-us", "nb": "no", "sp": " padded "}
    _, issues = apply_form(data, "log", {"log.levels": "bus debug"}, example.settings)
    assert issues == [ConfigIssue("log.levels", "line 1: expected 'key: value', got \"bus debug\"")]


def test_mapping_values_of_numbers_stay_numbers() -> None:
    shape = _Shape("mapping", False, dict, item=float, item_help="a number")
    assert _mapping("a: 1\nb: 2.5", shape) == {"a": 1, "b": 2.5}
    with pytest.raises(_Unconvertible, match="line 2: 'a' is given twice"):
        _mapping("a: 1\na: 2", shape)
    with pytest.raises(_Unconvertible, match='line 1 \\(a\\): must be a number, got "x"'):
        _mapping("a: x", shape)


def test_yaml_snippets(example: LoadedConfig) -> None:
    data = _data(EXAMPLE.read_text(encoding="utf-8"))
    form = {"engines.tts.xtts.voices": "anna:\n  - /voices/anna/1.wav\n  - /voices/anna/2.wav\n"}
    assert apply_form(data, "engines", form, example.settings) == ({}, [])
    assert data["engines"]["tts"]["xtts"]["voices"] == {"anna": ["/voices/anna/1.wav", "/voices/anna/2.wav"]}
    _, issues = apply_form(data, "engines", {"engines.tts.xtts.voices": "anna: [/a.wav"}, example.settings)
    assert [i.path for i in issues] == ["engines.tts.xtts.voices"]
    assert issues[0].message.startswith("is not valid YAML")


def test_checkbox_only_counts_with_its_marker(example: LoadedConfig) -> None:
    data = _data(EXAMPLE.read_text(encoding="utf-8"))
    apply_form(data, "call", {}, example.settings)
    assert data["call"]["record_audio"] is True
    apply_form(data, "call", {"present:call.record_audio": "1"}, example.settings)
    assert data["call"]["record_audio"] is False
    assert data["call"]["barge_in"]["enabled"] is True
    apply_form(data, "engines", {"present:engines.tts.piper.in_worker": "1", "engines.tts.piper.in_worker": "on"},
               example.settings)
    assert data["engines"]["tts"]["piper"]["in_worker"] is True


def test_bundled_persona_is_copied_whole_when_edited(example: LoadedConfig) -> None:
    data = _data(EXAMPLE.read_text(encoding="utf-8"))
    form = {"personas.gulya.greeting": "Алло!\nЭто Гуля.", "personas.gulya.dialogue": "scripted"}
    assert apply_form(data, "personas", form, example.settings) == ({}, [])
    text = _dump(data)
    assert "greeting: |-\n      Алло!\n      Это Гуля.\n" in text
    gulya = _loaded(text).settings.personas["gulya"]
    assert gulya.greeting == "Алло!\nЭто Гуля."
    assert gulya.dialogue == "scripted"
    assert gulya.display_name == "Гуля"
    assert gulya.facts == example.settings.personas["gulya"].facts


def test_llm_backend_from_defaults_keeps_its_kind(default: LoadedConfig) -> None:
    data = _data(bundled_config_text())
    apply_form(data, "engines", {"engines.llm.backends.local.n_ctx": "4096"}, default.settings)
    backend = _loaded(_dump(data)).settings.engines.llm.backends["local"]
    assert backend.kind == "llama_cpp" and backend.n_ctx == 4096


def test_secrets_are_returned_by_variable_name(example: LoadedConfig) -> None:
    data = _data(EXAMPLE.read_text(encoding="utf-8"))
    form = {"mqtt.password_env": "SECRETARY_MQTT_PASSWORD", "secret:mqtt.password_env": " s3cret \n"}
    assert apply_form(data, "mqtt", form, example.settings) == ({"SECRETARY_MQTT_PASSWORD": "s3cret"}, [])
    assert "s3cret" not in _dump(data)
    form = {"mqtt.password_env": "BROKER_PASSWORD", "secret:mqtt.password_env": "x"}
    assert apply_form(data, "mqtt", form, example.settings) == ({"BROKER_PASSWORD": "x"}, [])
    assert data["mqtt"]["password_env"] == "BROKER_PASSWORD"
    form = {"secret:modem.pin_env": ""}
    assert apply_form(data, "modem", form, example.settings) == ({}, [])


def test_field_errors_group_by_path() -> None:
    issues = [
        ConfigIssue("modem.answer_after_rings", "must be an integer from 0 to 10, got 99", 5),
        ConfigIssue("modem.answer_after_rings", "second"),
        ConfigIssue("channels.telegram.bots.main", "notify lists 7, who is not in users"),
        ConfigIssue("channels.telegram.bots.main.users[1]", "must be a numeric Telegram user id, got -1"),
        ConfigIssue("", "call.persona is 'x', which is not a persona"),
    ]
    assert field_errors(issues) == {
        "modem.answer_after_rings": ["must be an integer from 0 to 10, got 99", "second"],
        "channels.telegram.bots.main": ["notify lists 7, who is not in users"],
        "channels.telegram.bots.main.users[1]": ["must be a numeric Telegram user id, got -1"],
        "": ["call.persona is 'x', which is not a persona"],
    }
    fields = ["channels.telegram.bots.main.users", "channels.telegram.bots.main.notify"]
    grouped = field_errors(issues, fields)
    assert grouped["channels.telegram.bots.main.users"] == ["item 2: must be a numeric Telegram user id, got -1"]
    assert grouped["channels.telegram.bots.main"] == ["notify lists 7, who is not in users"]


def test_comments_stay_with_the_keys_they_introduce(example: LoadedConfig) -> None:
    data = _data(EXAMPLE.read_text(encoding="utf-8"))
    apply_form(data, "engines", {"engines.llm.max_tokens": "300"}, example.settings)
    numbers = [f"+7900000000{i}" for i in range(8)]
    apply_form(data, "modem", {"modem.blocked_numbers": "\n".join(numbers)}, example.settings)
    text = _dump(data)
    assert (
        "  stop_timeout_s: 4             # per service, on SIGTERM\n\n"
        "engines:\n  llm:\n    max_tokens: 300\n\n"
        "# How a call is conducted.\ncall:\n"
    ) in text
    assert "  blocked_numbers:     # callers rejected without answering\n    - '+79000000000'\n" in text
    assert "    - '+79000000007'\n\nmqtt:\n" in text
    settings = _loaded(text).settings
    assert settings.modem.blocked_numbers == numbers and settings.engines.llm.max_tokens == 300
