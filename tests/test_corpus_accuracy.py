"""The whole reader on faxes generated for this session, of kinds and texts the rules were not
tuned on: ``tests.corpus.templates`` seed 15 (the rules were tuned on seeds 11, 12 and 14 and on
the dev fixtures; seed 15 was not looked at before this test was written). Real engines; each
page is OCR'd once per session (``TEST_DUTYGW_OCR_CACHE=1`` keeps the readings between local
runs, as for the fixtures). Run with ``-s`` for the figures.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.corpus.measure import FIELDS, Summary, fixture_set, make_reader, read_set

pytestmark = pytest.mark.ocr
HELD_OUT = "new:15:20"
MIN_FIELD_ACCURACY = {"class": 1.0, "doc_no": 0.85, "issuer": 0.85, "title": 0.85}
"""Per field, the share of faxes read right: measured 1.00, 0.95, 0.90, 0.90 when written
(see the README), less a fax of slack."""


@pytest.fixture(scope="session")
def held_out(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Summary:
    config = request.config
    cache = getattr(config, "cache", None)
    root = Path(cache.mkdir("dutygw-corpus")) if cache else tmp_path_factory.mktemp("corpus")
    readings = root / "ocr" if os.environ.get("TEST_DUTYGW_OCR_CACHE") == "1" else None
    if readings:
        readings.mkdir(exist_ok=True)
    summary = read_set(HELD_OUT, fixture_set(HELD_OUT, root), make_reader(readings))
    print("\n" + summary.table() + "\n" + summary.line())
    return summary


def test_no_urgent_fax_missed_and_no_ordinary_fax_paged(held_out: Summary) -> None:
    urgent = [s for s in held_out.scores if s.truth["is_urgent"]]
    calm = [s for s in held_out.scores if not s.truth["is_urgent"]]
    assert urgent and calm  # the set has both, and traps among the calm ones
    assert held_out.misses == 0, [s.fixture.name for s in urgent if not s.ok()["urgent"]]
    assert held_out.false_pages == 0, [s.fixture.name for s in calm if not s.ok()["urgent"]]


@pytest.mark.parametrize("field", FIELDS[1:])
def test_field_accuracy_on_the_held_out_set(held_out: Summary, field: str) -> None:
    n = len(held_out.scores)
    share = held_out.count(field) / n
    print(f"{field}: {held_out.count(field)}/{n} = {share:.2f}")
    assert share >= MIN_FIELD_ACCURACY[field], held_out.table()
