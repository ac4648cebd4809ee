"""English normalisation: real sentences in, the words an English voice must say out."""

from __future__ import annotations

import re

import pytest

from engines.text_normalize import normalize

CASES: list[tuple[str, str]] = [
    # dates
    ("Meeting on 2026-12-25.", "Meeting on December twenty-fifth, twenty twenty-six."),
    ("Due 25.12.2026.", "Due December twenty-fifth, twenty twenty-six."),
    ("Due 12/25/2026.", "Due December twenty-fifth, twenty twenty-six."),
    ("Born on March 3, 1990.", "Born on March third, nineteen ninety."),
    ("On 5 March 2026.", "On March fifth, twenty twenty-six."),
    ("See you Jan. 5th.", "See you January fifth."),
    # times
    ("Call me at 14:30.", "Call me at fourteen thirty."),
    ("Call me at 9:05 am.", "Call me at nine oh five a m."),
    ("At 9:00.", "At nine o'clock."),
    ("At 18:00.", "At eighteen hundred."),
    ("Open 9 AM to 5 PM.", "Open nine a m to five p m."),
    # phone numbers: digit groups
    ("Call +1 (555) 123-4567.", "Call plus one, five five five, one two three, four five six seven."),
    ("Call (555) 123-4567.", "Call five five five, one two three, four five six seven."),
    ("Call 1-800-555-0199.", "Call one, eight zero zero, five five five, zero one nine nine."),
    ("Call +44 20 7946 0958.", "Call plus four four, two zero, seven nine four six, zero nine five eight."),
    ("Or +7 912 345-67-89.", "Or plus seven, nine one two, three four five, six seven, eight nine."),
    # money
    ("It costs $5.", "It costs five dollars."),
    ("It costs $1.", "It costs one dollar."),
    ("It costs $1,234.50.", "It costs one thousand two hundred and thirty-four dollars and fifty cents."),
    ("Only $0.99.", "Only ninety-nine cents."),
    ("About €20 or £15.", "About twenty euros or fifteen pounds."),
    ("We raised $2.5 million.", "We raised two point five million dollars."),
    ("Revenue hit $10M.", "Revenue hit ten million dollars."),
    ("Price 500 ₽.", "Price five hundred rubles."),
    ("Price 100 USD.", "Price one hundred dollars."),
    # percentages, units
    ("Save 15%.", "Save fifteen percent."),
    ("Rate 2.5%.", "Rate two point five percent."),
    ("5 km at 60 mph.", "five kilometers at sixty miles per hour."),
    ("It weighs 1 kg.", "It weighs one kilogram."),
    ("I need 2 hours, 1 hour, 30 min.", "I need two hours, one hour, thirty minutes."),
    ("It is -3°C outside.", "It is minus three degrees Celsius outside."),
    # numbers
    ("The 1st, 2nd, 3rd and 21st.", "The first, second, third and twenty-first."),
    ("In 2026 we grew.", "In twenty twenty-six we grew."),
    ("The 1990s and the '80s.", "The nineteen nineties and the eighties."),
    ("Pi is 3.14.", "Pi is three point one four."),
    ("It's -5 degrees.", "It's minus five degrees."),
    ("Wait 5-7 days.", "Wait five to seven days."),
    ("We have 1,000,000 users.", "We have one million users."),
    ("I have 42 apples.", "I have forty-two apples."),
    ("Code 007.", "Code zero zero seven."),
    ("Revenue in Q3.", "Revenue in Q three."),
    # abbreviations
    ("Dr. Smith and Mr. Jones.", "Doctor Smith and Mister Jones."),
    ("Mrs. Brown, Ms. Green.", "Missus Brown, Miz Green."),
    ("Apples, pears, etc. Then more.", "Apples, pears, et cetera. Then more."),
    ("Use e.g. this, i.e. that.", "Use for example this, that is that."),
    ("Acme Inc. is big.", "Acme Incorporated is big."),
    ("He lives at 5 St. James St. Thanks!", "He lives at five Saint James Street. Thanks!"),
    ("Room No. 5.", "Room Number five."),
    ("Tom & Jerry.", "Tom and Jerry."),
    ("Open 24/7.", "Open twenty-four seven."),
]


@pytest.mark.parametrize(("text", "spoken"), CASES, ids=[c[0][:40] for c in CASES])
def test_english_sentence(text: str, spoken: str) -> None:
    assert normalize(text, "en") == spoken


def test_nothing_numeric_survives() -> None:
    text = (
        "Order #4521: 3 items at $12.99 each, 15% off, delivered 2026-12-25 between 9:00 and 14:30; "
        "call +1 (555) 010-9999 or ext. 12. Version 2.1.0, 10,000 steps, 1st prize, 3.5 km."
    )
    spoken = normalize(text, "en")
    assert not re.search(r"[0-9$€₽%#]", spoken), spoken


def test_sentence_boundaries_survive() -> None:
    # the TTS streams by sentence: a normaliser that ate the periods would merge them
    spoken = normalize("Dr. Smith is out. He is back at 9:00. Call $5 now.", "en")
    assert spoken == "Doctor Smith is out. He is back at nine o'clock. Call five dollars now."
