"""Reconciliation of the gateway's own fills against the venue's drop copy.

model    FillRecord, Break, from_fix          matcher  Reconciler (pure, in memory)
store    ReconStore (SQLite)                  report   reconcile_records, write_reports
fixlog   offline input from FIX message logs  service  ReconService: live wiring for the session owner
See docs/reconciliation.md.
"""
from gateway.recon.events import BreakOpened, BreakResolved, Event, UnknownFill, UnknownFillCovered
from gateway.recon.fixlog import read_fills, reconcile_logs
from gateway.recon.matcher import PositionDiff, Reconciler, match_all
from gateway.recon.model import (Break, BreakStatus, BreakType, FillRecord, FillView, LogProblem, from_fix,
                                 parse_utc_timestamp)
from gateway.recon.report import ReconReport, reconcile_records, write_reports
from gateway.recon.service import ReconService
from gateway.recon.store import AddResult, ReconStore

__all__ = [
    "AddResult", "Break", "BreakOpened", "BreakResolved", "BreakStatus", "BreakType", "Event", "FillRecord",
    "FillView", "LogProblem", "PositionDiff", "ReconReport", "ReconService", "ReconStore", "Reconciler",
    "UnknownFill", "UnknownFillCovered", "from_fix", "parse_utc_timestamp", "read_fills", "reconcile_logs",
    "reconcile_records", "match_all", "write_reports",
]
