"""The call-back form: the number, the name, the note, the page, and the bus arguments."""

from __future__ import annotations

import pytest

from channels.widget.handoff import CallbackForm, InvalidHandoff, normalize_number

ORIGIN = "https://example.com"


@pytest.mark.parametrize(("raw", "number"), [
    ("+1 (555) 010-2030", "+15550102030"),
    ("8 916 123-45-67", "89161234567"),
    ("  12345 ", "12345"),
    ("+" + "1" * 20, "+" + "1" * 20),
])
def test_numbers_are_normalized(raw: str, number: str) -> None:
    assert normalize_number(raw) == number


@pytest.mark.parametrize("raw", [
    "", "   ", "1234", "1" * 21, "++12345", "12+345", "call me", "555.010.2030", "١٢٣٤٥٦", "+1 555 010 2030 ext 4", None, 12345,
])
def test_anything_else_is_not_a_number(raw: object) -> None:
    with pytest.raises(InvalidHandoff):
        normalize_number(raw)


def test_a_form_is_checked_and_becomes_the_bus_arguments() -> None:
    form = CallbackForm.parse(
        {"type": "callback", "name": "  John\tPeters\x00 ", "number": "+7 (916) 123-45-67",
         "note": " About the invoice\nplease\x07 ", "page": ORIGIN + "/pricing?x=1"},
        ORIGIN,
    )
    assert form == CallbackForm("John Peters", "+79161234567", "About the invoice\nplease", ORIGIN + "/pricing?x=1")
    assert form.bus_args("site", "widget:site:abc", 1700000000.12345) == {
        "widget": "site", "name": "John Peters", "number": "+79161234567", "note": "About the invoice\nplease",
        "page": ORIGIN + "/pricing?x=1", "session": "widget:site:abc", "ts": 1700000000.123,
    }


def test_name_and_note_are_optional_but_bounded() -> None:
    form = CallbackForm.parse({"number": "12345"}, ORIGIN)
    assert (form.name, form.note, form.page) == ("", "", ORIGIN)
    CallbackForm.parse({"number": "12345", "name": "n" * 80, "note": "x" * 500}, ORIGIN)
    with pytest.raises(InvalidHandoff, match="name is too long"):
        CallbackForm.parse({"number": "12345", "name": "n" * 81}, ORIGIN)
    with pytest.raises(InvalidHandoff, match="note is too long"):
        CallbackForm.parse({"number": "12345", "note": "x" * 501}, ORIGIN)
    with pytest.raises(InvalidHandoff, match="must be text"):
        CallbackForm.parse({"number": "12345", "name": ["x"]}, ORIGIN)


@pytest.mark.parametrize("page", ["https://evil.example/", "https://example.com.evil.example/", "javascript:alert(1)",
                                  ORIGIN + "/" + "x" * 600, 42])
def test_a_page_off_the_origin_is_replaced_by_the_origin(page: object) -> None:
    assert CallbackForm.parse({"number": "12345", "page": page}, ORIGIN).page == ORIGIN
