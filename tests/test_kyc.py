"""KYC/AML gating over real FIX sessions: only an approved account whose review has not expired trades; the
KYC file reloads with the risk files, and each account's change is journaled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from config.errors import ConfigError
from config.risk_models import load_risk_config

HEADER = "account,status,review_expires,risk_rating\n"
KYC = HEADER + "ACC1,approved,2099-12-31,low\nACC2,suspended,2099-12-31,high\nACC3,approved,2020-01-31,medium\n"
EXAMPLES = Path(__file__).resolve().parents[1] / "config" / "examples"


def _er(client: Any, cl: str, exec_type: str) -> dict[int, str]:
    return client.wait_for(lambda m: m.get(35) == "8" and m.get(11) == cl and m.get(150) == exec_type)


def test_only_approved_accounts_with_a_current_review_trade(stack: Any) -> None:
    kyc = stack.tmp / "kyc.csv"
    kyc.write_text(KYC)
    stack.cfg = stack.cfg.model_copy(update={"risk": stack.cfg.risk.model_copy(update={"kyc": kyc})})
    stack.start_sim()
    gw = stack.start_gateway()
    c1, c2 = stack.client("OMS1"), stack.client("OMS2")
    c1.new_order("K1", "ACC1", "AAPL", "1", 10, 190.0)
    _er(c1, "K1", "F")
    c1.new_order("K2", "ACC2", "AAPL", "1", 10, 190.0)
    rej = _er(c1, "K2", "8")
    assert rej[58].startswith("KYC_NOT_APPROVED:") and "suspended" in rej[58] and rej[103] == "15"
    c2.new_order("K3", "ACC3", "AAPL", "1", 10, 190.0)
    rej = _er(c2, "K3", "8")
    assert rej[58].startswith("KYC_REVIEW_EXPIRED:") and "2020-01-31" in rej[58]
    assert {o.account for o in stack.sim.orders.values()} == {"ACC1"}  # the venue saw nothing of the others
    # compliance clears ACC2: a reload puts it in force for the next order, journaled per account
    kyc.write_text(KYC.replace("ACC2,suspended", "ACC2,approved"))
    gw.reload_risk("compliance-anna", "ACC2 review completed")
    c1.new_order("K4", "ACC2", "AAPL", "1", 10, 190.0)
    _er(c1, "K4", "F")
    gw.journal.flush()
    from gateway.events import journal_query

    admin = [r for r in journal_query.query(gw.journal.path, table="admin") if r["action"] == "kyc"]
    assert [(r["scope"], r["who"], r["why"]) for r in admin] == [("account:ACC2", "compliance-anna",
                                                                 "ACC2 review completed")]
    assert '"status": "suspended"' in admin[0]["detail"] and '"status": "approved"' in admin[0]["detail"]
    codes = {r["cl_ord_id"]: r["code"] for r in journal_query.query(gw.journal.path) if r["decision"] == "reject"}
    assert codes == {"K2": "KYC_NOT_APPROVED", "K3": "KYC_REVIEW_EXPIRED"}


@pytest.mark.parametrize("text,field,why", [
    (HEADER + "ACC1,approved,2099-12-31,low\nACC2,approved,2099-12-31,low\n", "<rows>", "no KYC record for ACC3"),
    (KYC.replace("suspended", "frozen"), "row 2", "must be one of approved"),
    (KYC.replace("2020-01-31", "31/01/2020"), "row 3", "must be a date"),
    (KYC + "ACC9,approved,2099-12-31,low\n", "row 4.account", "unknown account"),
    ("acct,status\n", "<header>", "the header must be"),
])
def test_a_broken_kyc_file_names_its_row_and_why(tmp_path: Path, text: str, field: str, why: str) -> None:
    p = tmp_path / "kyc.csv"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_risk_config(EXAMPLES / "instruments.csv", EXAMPLES / "accounts.toml", EXAMPLES / "limits.toml",
                         kyc_path=p)
    assert str(p) in str(e.value) and field in str(e.value) and why in str(e.value), str(e.value)
