"""Every state and every urgency rule has a staff word, in Chinese: nothing internal is shown raw."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

import pytest

from gateway import terms
from ocr.model import Rule
from storage.states import AttemptResult, CallDirection, CallOutcome, EscalationState, ReceiptStatus

TABLES: list[tuple[type[StrEnum], Mapping[str, str]]] = [
    (CallDirection, terms.DIRECTION), (CallOutcome, terms.CALL_OUTCOME), (ReceiptStatus, terms.RECEIPT_STATUS),
    (AttemptResult, terms.ATTEMPT_RESULT), (EscalationState, terms.PAGE_STATE), (Rule, terms.URGENCY_RULE),
]


@pytest.mark.parametrize(("states", "table"), TABLES, ids=[states.__name__ for states, _ in TABLES])
def test_every_member_has_a_chinese_word(states: type[StrEnum], table: Mapping[str, str]) -> None:
    for member in states:
        shown = terms.word(table, member)
        assert shown != "其他" and any("\u4e00" <= ch <= "\u9fff" for ch in shown), (member, shown)


def test_the_console_and_the_cli_say_the_same_word_for_a_receipts_status() -> None:
    from gateway.web.faxes import STATUS_LABELS

    assert STATUS_LABELS is terms.RECEIPT_STATUS and terms.RECEIPT_STATUS[ReceiptStatus.FILED] == "待签收"
