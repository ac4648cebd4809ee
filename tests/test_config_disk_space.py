"""``call.min_free_mb``: the free space kept on the data partition (retention frees audio, staging refuses)."""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from config.loader import parse_config_text


def test_min_free_mb_has_a_default_and_takes_a_number() -> None:
    assert parse_config_text("box_id: b\n", "t", {}).settings.call.min_free_mb == 200.0
    assert parse_config_text("box_id: b\ncall:\n  min_free_mb: 0.5\n", "t", {}).settings.call.min_free_mb == 0.5


@pytest.mark.parametrize("value", ["-1", "lots", "2000000"])
def test_a_bad_min_free_mb_is_explained(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config_text(f"box_id: b\ncall:\n  min_free_mb: {value}\n", "t.yaml", {})
    text = caught.value.render()
    assert "call.min_free_mb" in text and "line 3" in text
