"""ConfigEditor and write_secrets: validated, atomic, comment-keeping writes of real files."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from config.errors import ConfigError, ConfigIssue
from config.loader import load_config
from config.secrets import read_env_file
from daemon.web.config_editor import NO_SECRETS_FILE, ConfigEditor, write_secrets
from daemon.web.config_forms import apply_form

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "config" / "example.yaml"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    shutil.copyfile(EXAMPLE, path)
    path.chmod(0o644)
    return path


def _with_secrets_file(config: Path, secrets: Path) -> None:
    text = config.read_text(encoding="utf-8").replace("secrets_file: null", f"secrets_file: {secrets}")
    config.write_text(text, encoding="utf-8")


def test_unedited_data_dumps_to_the_same_text(config: Path) -> None:
    editor = ConfigEditor(config, environ={})
    data, loaded = editor.load()
    assert editor.dump(data) == config.read_text(encoding="utf-8")
    assert loaded.settings.box_id == "office-box"


def test_save_keeps_comments_and_backs_up_the_old_file(config: Path) -> None:
    old = config.read_bytes()
    editor = ConfigEditor(config, environ={})
    data, loaded = editor.load()
    apply_form(data, "modem", {"modem.answer_after_rings": "4"}, loaded.settings)
    saved = editor.save(data)
    assert saved.settings.modem.answer_after_rings == 4
    text = config.read_text(encoding="utf-8")
    assert "  answer_after_rings: 4  # 0..10\n" in text
    assert "# Example configuration for a real box." in text
    assert editor.backup_path == config.with_name("config.yaml.bak")
    assert editor.backup_path.read_bytes() == old
    assert load_config(config, environ={}).settings.modem.answer_after_rings == 4
    assert [p.name for p in config.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_invalid_change_raises_and_writes_nothing(config: Path) -> None:
    old = config.read_bytes()
    editor = ConfigEditor(config, environ={})
    data, loaded = editor.load()
    _, issues = apply_form(data, "modem", {"modem.answer_after_rings": "99"}, loaded.settings)
    assert issues == []  # converts fine; the schema refuses it
    with pytest.raises(ConfigError) as caught:
        editor.save(data)
    [issue] = caught.value.issues
    assert issue.path == "modem.answer_after_rings"
    assert issue.message == "must be an integer from 0 to 10, got 99"
    line = editor.dump(data).splitlines()[issue.line - 1]
    assert line.startswith("  answer_after_rings: 99")
    assert config.read_bytes() == old
    assert not editor.backup_path.exists()


def test_file_mode_is_kept(config: Path) -> None:
    config.chmod(0o640)
    editor = ConfigEditor(config, environ={})
    data, loaded = editor.load()
    apply_form(data, "log", {"log.level": "debug"}, loaded.settings)
    editor.save(data)
    assert _mode(config) == 0o640
    assert _mode(editor.backup_path) == 0o640
    assert "level: debug" in config.read_text(encoding="utf-8")


def test_a_symlinked_config_is_edited_where_it_lives(tmp_path: Path, config: Path) -> None:
    link = tmp_path / "etc" / "config.yaml"
    link.parent.mkdir()
    link.symlink_to(config)
    editor = ConfigEditor(link, environ={})
    data, loaded = editor.load()
    apply_form(data, "web", {"web.listen": "0.0.0.0:8080"}, loaded.settings)
    editor.save(data)
    assert link.is_symlink()
    assert "listen: 0.0.0.0:8080" in config.read_text(encoding="utf-8")
    assert editor.backup_path == config.with_name("config.yaml.bak")


def test_indentation_of_the_file_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("box_id: four\nmodem:\n    driver: simulator  # here\n    blocked_numbers:\n    - '+1'\n",
                    encoding="utf-8")
    editor = ConfigEditor(path, environ={})
    data, loaded = editor.load()
    assert editor.dump(data) == path.read_text(encoding="utf-8")
    apply_form(data, "modem", {"modem.answer_after_rings": "3"}, loaded.settings)
    editor.save(data)
    assert path.read_text(encoding="utf-8") == (  # a new key goes where the schema orders it
        "box_id: four\nmodem:\n    driver: simulator  # here\n    answer_after_rings: 3\n"
        "    blocked_numbers:\n    - '+1'\n"
    )


def test_load_refuses_an_invalid_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("box_id: x\nmodem:\n  answer_after_rings: two\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        ConfigEditor(path, environ={}).load()
    assert caught.value.issues[0].path == "modem.answer_after_rings"
    with pytest.raises(ConfigError, match="file not found"):
        ConfigEditor(tmp_path / "missing.yaml", environ={}).load()


def test_secret_goes_to_the_secrets_file(tmp_path: Path, config: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("# box secrets\nexport SECRETARY_SIM_PIN=1234\nSECRETARY_MQTT_PASSWORD=old\n", encoding="utf-8")
    secrets.chmod(0o600)
    _with_secrets_file(config, secrets)
    editor = ConfigEditor(config, environ={})
    data, loaded = editor.load()
    form = {"secret:mqtt.password_env": "new pass 'quoted' $HOME #1"}
    found, issues = apply_form(data, "mqtt", form, loaded.settings)
    assert issues == []
    saved = editor.save(data, found)
    assert saved.secret("SECRETARY_MQTT_PASSWORD") == "new pass 'quoted' $HOME #1"
    assert _mode(secrets) == 0o600
    values, problems = read_env_file(secrets)
    assert problems == []
    assert values == {"SECRETARY_SIM_PIN": "1234", "SECRETARY_MQTT_PASSWORD": "new pass 'quoted' $HOME #1"}
    text = secrets.read_text(encoding="utf-8")
    assert text.startswith("# box secrets\nexport SECRETARY_SIM_PIN=1234\nSECRETARY_MQTT_PASSWORD=")
    assert "new pass" not in config.read_text(encoding="utf-8")


def test_secrets_file_named_in_the_same_save_is_created(tmp_path: Path, config: Path) -> None:
    editor = ConfigEditor(config, environ={})
    data, _ = editor.load()
    data["secrets_file"] = str(tmp_path / "new.env")
    editor.save(data, {"SECRETARY_MQTT_PASSWORD": "pw"})
    assert _mode(tmp_path / "new.env") == 0o600
    assert read_env_file(tmp_path / "new.env") == ({"SECRETARY_MQTT_PASSWORD": "pw"}, [])


def test_secrets_without_a_secrets_file_are_refused(config: Path) -> None:
    old = config.read_bytes()
    editor = ConfigEditor(config, environ={})
    data, loaded = editor.load()
    apply_form(data, "modem", {"modem.answer_after_rings": "3"}, loaded.settings)
    with pytest.raises(ConfigError) as caught:
        editor.save(data, {"SECRETARY_MQTT_PASSWORD": "pw"})
    assert caught.value.issues == [ConfigIssue("secrets_file", NO_SECRETS_FILE)]
    assert config.read_bytes() == old
    assert not editor.backup_path.exists()


@pytest.mark.parametrize("value", ["plain-token_1:AB/c=d", "", "with space", "it's", ' "dq" ', "ünï", "a#b", "$X"])
def test_write_secrets_round_trips_through_the_reader(tmp_path: Path, value: str) -> None:
    path = tmp_path / "secrets.env"
    write_secrets(path, {"TOKEN": value})
    assert _mode(path) == 0o600
    assert read_env_file(path) == ({"TOKEN": value}, [])


def test_write_secrets_updates_in_place(tmp_path: Path) -> None:
    path = tmp_path / "secrets.env"
    path.write_text("# comment\n\nexport A=1\nB='two words'\nA=again\n", encoding="utf-8")
    path.chmod(0o640)
    write_secrets(path, {"A": "x", "C": "3"})
    assert path.read_text(encoding="utf-8") == "# comment\n\nexport A=x\nB='two words'\nA=x\nC=3\n"
    assert _mode(path) == 0o600
    assert read_env_file(path) == ({"A": "x", "B": "two words", "C": "3"}, [])


def test_write_secrets_refuses_bad_names_and_multiline_values(tmp_path: Path) -> None:
    path = tmp_path / "secrets.env"
    with pytest.raises(ValueError, match="not an environment variable name"):
        write_secrets(path, {"BAD-NAME": "x"})
    with pytest.raises(ValueError, match="single line") as caught:
        write_secrets(path, {"TOKEN": "line1\nline2"})
    assert "line1" not in str(caught.value)
    assert not path.exists()
    with pytest.raises(FileNotFoundError):
        write_secrets(tmp_path / "missing" / "secrets.env", {"TOKEN": "x"})


def test_the_process_environment_is_the_default(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(os.environ, "SECRETARY_SIM_PIN", "9999")
    _, loaded = ConfigEditor(config).load()
    assert loaded.secret("SECRETARY_SIM_PIN") == "9999"
