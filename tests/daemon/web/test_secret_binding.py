"""The settings page's rules: secrets bound to their purpose, program fields locked (daemon/web/settings)."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel
from ruamel.yaml import YAML

from config.loader import LoadedConfig, parse_config_text
from config.schema import SecretaryConfig
from daemon.web.config_forms import apply_form, build_form
from daemon.web.settings.program_fields import ANY, LOCKED_FIELDS, locked_reason
from daemon.web.settings.secret_binding import PURPOSES, bindings, rebinding_issues

BASE = """\
box_id: rules-box
mqtt:
  url: mqtt://127.0.0.1:1883
  username: secretary
channels:
  remote:
    url: mqtts://fleet.example.org:8883
    username: box
  twilio:
    public_url: https://box.example.org
  telegram:
    bots:
      main: {token_env: SECRETARY_TELEGRAM_TOKEN, users: [1]}
engines:
  llm:
    chain: [local, cloud]
    backends:
      local: {kind: llama_cpp}
      cloud: {kind: openai_compatible, provider: custom, base_url: 'https://llm.example.org/v1', model: m}
      gpu: {kind: vllm, extra_args: [--enforce-eager]}
"""
STORED = {
    "SECRETARY_MQTT_PASSWORD": "mqtt-pass",
    "SECRETARY_REMOTE_MQTT_PASSWORD": "remote-pass",
    "SECRETARY_TWILIO_AUTH_TOKEN": "twilio-token",
    "SECRETARY_TELEGRAM_TOKEN": "tg-token",
    "OPENAI_API_KEY": "sk-openai",
    "SECRETARY_SIM_PIN": "1234",
}


def _loaded(text: str = BASE) -> LoadedConfig:
    return parse_config_text(text, "rules.yaml", STORED)


def _changed(text: str, **edits: str) -> SecretaryConfig:
    """The config after replacing each ``old`` text (keyword name, with __ for spaces) by its value."""
    for old, new in edits.items():
        assert old.replace("__", " ") in text, old
        text = text.replace(old.replace("__", " "), new)
    return _loaded(text).settings


def _issues(new: SecretaryConfig, retyped: set[str] = frozenset()) -> dict[str, str]:  # type: ignore[assignment]
    old = _loaded()
    return {i.path: i.message for i in rebinding_issues(old.settings, new, retyped, lambda n: old.secret(n) is not None)}


def _models(model: type[BaseModel], keys: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str, Any]]:
    """(keys, field name, annotation) of every field of the schema, mapping entries as ANY."""
    for name, info in model.model_fields.items():
        yield keys, name, info.annotation
        for member in _members(info.annotation):
            yield from _models(member[1], (*keys, name, *member[0]))


def _members(annotation: Any) -> Iterator[tuple[tuple[str, ...], type[BaseModel]]]:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield (), annotation
    elif origin is dict:
        for _, member in _members(args[1]):
            yield (ANY,), member
    elif args:
        for arg in args:
            yield from _members(arg)


SCHEMA = {(*keys, name) for keys, name, _ in _models(SecretaryConfig)}


def test_every_env_field_of_the_schema_has_a_purpose() -> None:
    env_fields = {keys for keys in SCHEMA if keys[-1].endswith("_env")}
    assert env_fields == {p.env for p in PURPOSES}


def test_every_listed_field_exists_in_the_schema() -> None:
    listed = {f for p in PURPOSES for f in (*p.destinations, *p.secret_files)} | set(LOCKED_FIELDS)
    assert listed <= SCHEMA, sorted(listed - SCHEMA)


def test_bindings_name_each_secret_and_where_it_goes() -> None:
    found = {b.path: b for b in bindings(_loaded().settings)}
    assert found["channels.remote.password_env"].destinations["channels.remote.url"] == "mqtts://fleet.example.org:8883"
    assert found["channels.telegram.bots.main.token_env"].env == "SECRETARY_TELEGRAM_TOKEN"
    assert found["engines.llm.backends.cloud.api_key_env"].env is None  # custom, no key
    assert "engines.llm.backends.local.api_key_env" not in found  # llama.cpp takes no key


def test_the_attack_moving_the_twilio_token_to_a_listener_is_refused() -> None:
    attack = _changed(BASE, **{"url:__mqtts://fleet.example.org:8883": "url: mqtt://127.0.0.1:9999",
                               "username:__box": "username: box\n    password_env: SECRETARY_TWILIO_AUTH_TOKEN"})
    issues = _issues(attack)
    assert list(issues) == ["channels.remote.password_env"]
    assert "channels.remote.password_env, channels.remote.url changed" in issues["channels.remote.password_env"]
    assert "type the secret again" in issues["channels.remote.password_env"]
    assert _issues(attack, {"channels.remote.password_env"}) == {}


@pytest.mark.parametrize("edit", [
    {"url:__mqtt://127.0.0.1:1883": "url: mqtt://evil.example.org:1883"},
    {"username:__secretary": "username: someone-else"},
    {"public_url:__https://box.example.org": "public_url: https://evil.example.org"},
    {"rules-box\n": "rules-box\nmodem: {at_port: /dev/pts/7}\n"},
    {"  telegram:\n": "  telegram:\n    api_url: https://evil.example.org\n"},
])
def test_each_destination_change_needs_the_secret_again(edit: dict[str, str]) -> None:
    text = BASE
    for old, new in edit.items():
        text = text.replace(old.replace("__", " "), new)
    assert text != BASE
    issues = _issues(_loaded(text).settings)
    assert len(issues) == 1 and "type the secret again" in next(iter(issues.values()))


def test_pointing_an_env_field_at_another_purposes_secret_is_refused() -> None:
    # The remote broker has no password stored under its own name; the MQTT one is.
    old_text = BASE.replace("    username: box\n", "    username: box\n    password_env: UNSET_NAME\n")
    new = _changed(old_text, UNSET_NAME="SECRETARY_MQTT_PASSWORD")
    old = _loaded(old_text)
    refused = rebinding_issues(old.settings, new, set(), lambda n: old.secret(n) is not None)
    assert [i.path for i in refused] == ["channels.remote.password_env"]


def test_a_provider_preset_key_cannot_be_sent_to_a_custom_url() -> None:
    # custom -> openai keeps the custom base_url: OPENAI_API_KEY (the preset's) would go there.
    new = _changed(BASE, **{"provider:__custom": "provider: openai"})
    assert list(_issues(new)) == ["engines.llm.backends.cloud.api_key_env"]


def test_changes_without_a_stored_secret_are_free() -> None:
    old = _loaded()
    new = _changed(BASE, **{"url:__mqtt://127.0.0.1:1883": "url: mqtt://other:1883"})
    assert rebinding_issues(old.settings, new, set(), lambda _: False) == []
    assert _issues(_changed(BASE, **{"model:__m}": "model: other}"})) == {}  # not a destination


def test_a_file_of_secrets_pins_the_destination_even_with_the_secret_typed() -> None:
    with_file = BASE.replace("  username: secretary\n", "  username: secretary\n  credentials_file: /etc/creds.env\n")
    # Validated without loading: the loader would read the (absent) credentials file.
    old_settings = SecretaryConfig.model_validate(YAML(typ="safe").load(with_file))
    new = SecretaryConfig.model_validate(YAML(typ="safe").load(with_file.replace("127.0.0.1:1883", "evil:1883")))
    [issue] = rebinding_issues(old_settings, new, {"mqtt.password_env"}, lambda _: True)
    assert issue.path == "mqtt.url" and "mqtt.credentials_file" in issue.message


def test_locked_fields_are_read_only_and_a_change_is_refused() -> None:
    loaded = _loaded()
    fields = {f.path: f for s in build_form(loaded.settings, "engines", lambda _: False).sections for f in _all(s)}
    assert fields["engines.tts.xtts.python"].locked == "the interpreter the XTTS worker runs in"
    assert fields["engines.llm.backends.gpu.extra_args"].locked and fields["engines.llm.backends.gpu.executable"].locked
    assert not fields["engines.llm.backends.gpu.model"].locked
    assert locked_reason(("engines", "llm", "backends", "any-name", "executable")) is not None
    data = YAML(typ="rt").load(BASE)
    for path, value in [("engines.tts.xtts.python", "/tmp/evil"),
                        ("engines.llm.backends.gpu.extra_args", "--enforce-eager\n--trust-remote-code"),
                        ("engines.llm.backends.gpu.executable", "/tmp/evil")]:
        secrets, issues = apply_form(data, "engines", {path: value}, loaded.settings)
        assert [i.path for i in issues] == [path] and "not editable from the web page" in issues[0].message
    assert YAML(typ="safe").load(BASE) == data  # nothing was written
    unchanged = {"engines.tts.xtts.python": str(loaded.settings.engines.tts.xtts.python)}
    assert apply_form(data, "engines", unchanged, loaded.settings) == ({}, [])  # the same value is no change
    # the broker's ACL names the topic prefix: a new one needs `secretary mqtt users` as root, not a form
    _, issues = apply_form(data, "mqtt", {"mqtt.topic_prefix": "elsewhere"}, loaded.settings)
    assert [i.path for i in issues] == ["mqtt.topic_prefix"] and "secretary mqtt users" in issues[0].message


def test_two_different_secrets_for_one_variable_are_refused() -> None:
    loaded = _loaded()
    data = YAML(typ="rt").load(BASE)
    form = {"channels.remote.password_env": "SHARED", "secret:channels.remote.password_env": "one",
            "channels.twilio.auth_token_env": "SHARED", "secret:channels.twilio.auth_token_env": "two"}
    _, issues = apply_form(data, "channels", form, loaded.settings)
    assert any("a different secret for SHARED" in i.message for i in issues)


def _all(section: Any) -> Iterator[Any]:
    yield from section.fields
    for child in section.sections:
        yield from _all(child)
