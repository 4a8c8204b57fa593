"""The event log (the source of truth) and what is projected from it.

log            the append-only, per-day write-ahead log of every state-changing event
journal        the SQLite audit journal: decisions, fills, operator actions (a projection of the log)
journal_query  `fixgw journal`: reading the journal
metrics        the Prometheus projection
batching       how the projections' threads gather their queues into batches
"""
