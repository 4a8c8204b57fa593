"""The reason catalogue and docs/runbooks/ stay in step: a page per code, a code per page."""
import re
from pathlib import Path

import pytest

from risk import kernel as K
from risk.reasons import BY_ID, CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "docs" / "runbooks"
SECTIONS = ("## Meaning", "## What the operator checks", "## How to clear it")
GATEWAY_CODES = {"VENUE_DOWN", "CHECK_ERROR", "UNKNOWN_ORDER", "ACCOUNT_NOT_PERMITTED", "INVALID_ORDER",
                 "GATEWAY_STOPPING", "DROPCOPY_UNKNOWN_FILL"}


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_every_code_has_a_runbook_with_the_sections(code: str) -> None:
    r = CATALOGUE[code]
    page = ROOT / r.runbook
    assert page.is_file(), f"missing {r.runbook}"
    text = page.read_text()
    assert text.startswith(f"# {code}\n")
    for sec in SECTIONS:
        assert sec in text, f"{r.runbook} lacks {sec!r}"
        body = text.split(sec, 1)[1].split("\n## ", 1)[0].strip()
        assert body, f"{r.runbook}: {sec!r} is empty"


def test_every_runbook_page_has_a_code() -> None:
    pages = {p.stem for p in RUNBOOKS.glob("*.md")}
    assert pages == set(CATALOGUE), f"orphans: {pages - set(CATALOGUE)}, missing: {set(CATALOGUE) - pages}"


def test_codes_are_stable_upper_snake_with_unique_ids() -> None:
    for code, r in CATALOGUE.items():
        assert re.fullmatch(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)*", code)
        assert r.meaning and "\n" not in r.meaning
        assert r.ord_rej_reason is None or r.ord_rej_reason in (0, 1, 2, 3, 5, 6, 11, 13, 15, 99)
        assert BY_ID[r.id] is r
    assert GATEWAY_CODES <= set(CATALOGUE)


def test_kernel_ids_are_catalogued() -> None:
    kernel_ids = {v for k, v in vars(K).items() if k.isupper() and k in CATALOGUE}
    assert kernel_ids == {r.id for r in CATALOGUE.values() if r.raised_by == "kernel"}
    for code, r in CATALOGUE.items():
        if r.raised_by == "kernel":
            assert getattr(K, code) == r.id
