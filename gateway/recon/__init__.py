"""Reconciliation of the gateway's own fills against the venue's drop copy. See docs/reconciliation.md."""
