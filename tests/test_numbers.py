"""Number normalisation: every spelling a carrier or a person uses becomes one form."""

from __future__ import annotations

import pytest

from gateway.calls.numbers import WITHHELD, clean_name, dialable, normalise
from gateway.shifts.roster import normalise_number as roster_number

CASES = [
    # presented                 canonical        withheld
    ("13800001111", "13800001111", False),
    ("+8613800001111", "13800001111", False),
    ("+86 138 0000 1111", "13800001111", False),
    ("008613800001111", "13800001111", False),
    ("8613800001111", "13800001111", False),
    ("013800001111", "13800001111", False),  # the trunk's leading 0 before a mobile
    ("138-0000-1111", "13800001111", False),
    ("02787654321", "02787654321", False),
    ("027-8765 4321", "02787654321", False),
    ("(027) 87654321", "02787654321", False),
    ("+862787654321", "02787654321", False),
    ("+86 27 8888 9999", "02788889999", False),
    ("00862787654321", "02787654321", False),
    ("8001", "8001", False),
    ("12345", "12345", False),
    ("anonymous", WITHHELD, True),
    ("Anonymous", WITHHELD, True),
    ("<unknown>", WITHHELD, True),
    ("", WITHHELD, True),
    (None, WITHHELD, True),
    ("unknown", WITHHELD, True),
    ("Restricted", WITHHELD, True),
    ("private", WITHHELD, True),
    ("Private Number", WITHHELD, True),
]


@pytest.mark.parametrize(("presented", "canonical", "withheld"), CASES)
def test_normalise(presented: str | None, canonical: str, withheld: bool) -> None:
    assert normalise(presented) == (canonical, withheld)


@pytest.mark.parametrize(
    ("presented", "name"),
    [("张三", "张三"), ("<unknown>", None), ("Anonymous", None), ("", None), (None, None),
     ("  Duty Desk 1 ", "Duty Desk 1"), ("\ufffd\ufffd", None)],
)
def test_clean_name(presented: str | None, name: str | None) -> None:
    assert clean_name(presented) == name


@pytest.mark.parametrize(
    ("written", "number"),
    [("+86 27 8765 4321", "02787654321"), ("027-8765 4321", "02787654321"), ("（027）87654321", "02787654321"),
     ("+86 138-0013-8000", "13800138000"), ("0086 13800138000", "13800138000"), ("8010", "8010"), ("", "")],
)
def test_one_normaliser_for_what_is_read_and_what_is_dialed(written: str, number: str) -> None:
    """The roster (numbers the gateway dials) and the calls (numbers the PBX presents)
    give one form: a leader who calls in is recognised as the number the roster names."""
    assert dialable(written) == number
    assert roster_number(written) == number
    if written:
        assert normalise(written).number == number


@pytest.mark.parametrize("written", ["139-abc", "8001#", "tel:8001"])
def test_a_number_to_dial_is_never_guessed(written: str) -> None:
    with pytest.raises(ValueError, match="characters other than digits"):
        dialable(written)
