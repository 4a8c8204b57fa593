"""Prometheus metrics: decisions by outcome and code, check latency, fills, limit utilisation, sessions, breaks.

Counters move from the event log's subscriber (the same events the journal sees, so the two never disagree);
gauges are refreshed by the control plane about once a second.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from gateway.events.schema import Breaker, Cancel, Event, Execution, NewOrder, Rejected, Replace, Surveillance

log = logging.getLogger("fixgw.metrics")

KINDS = {"N": "new", "D": "new", "G": "replace", "F": "cancel"}


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.checked = Counter("fixgw_requests_checked", "Requests decided by the gateway", ["kind"], registry=r)
        self.accepted = Counter("fixgw_requests_accepted", "Requests accepted and forwarded", ["kind"], registry=r)
        self.warned = Counter("fixgw_requests_warned", "Accepted requests over a warn threshold", ["code"],
                              registry=r)
        self.rejected = Counter("fixgw_requests_rejected", "Requests rejected, by reason code", ["kind", "code"],
                                registry=r)
        self.check_latency = Histogram(
            "fixgw_check_latency_seconds", "Time to decide a request (gateway and risk checks)", registry=r,
            buckets=(1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 5e-3))
        self.fills = Counter("fixgw_fills", "Fills, corrections and busts from the venue", ["exec_type"], registry=r)
        self.utilisation = Gauge("fixgw_limit_utilisation_ratio", "Value over limit per account and limit",
                                 ["account", "limit"], registry=r)
        self.session_up = Gauge("fixgw_session_logged_on", "1 while a FIX session is logged on",
                                ["role", "session"], registry=r)
        self.open_orders = Gauge("fixgw_open_orders", "Orders open at the venue", registry=r)
        self.unroutable = Gauge("fixgw_unroutable_reports", "Venue reports for unknown orders", registry=r)
        self.recon_open = Gauge("fixgw_recon_open_breaks", "Open reconciliation breaks by type", ["type"], registry=r)
        self.alerts = Counter("fixgw_alerts", "Alerts raised, by code", ["code"], registry=r)
        self.breaker_trips = Counter("fixgw_breaker_trips", "Circuit breakers tripped, by code", ["code"], registry=r)
        self.breakers_tripped = Gauge("fixgw_breakers_tripped", "Circuit breakers tripped and not yet cleared",
                                      ["code"], registry=r)
        self.price_age = Gauge("fixgw_reference_price_age_seconds", "Age of the market-data reference price",
                               ["symbol"], registry=r)
        self.halted = Gauge("fixgw_instruments_halted", "Instruments halted (venue or operator)", registry=r)
        self.rollovers = Counter("fixgw_trading_day_rollovers", "Trading-day rollovers done", registry=r)
        self.task_restarts = Counter("fixgw_task_restarts", "Control-plane tasks restarted after a failure",
                                     ["task"], registry=r)
        self._new = self.accepted.labels("new")
        self._checked_new = self.checked.labels("new")

    def on_event(self, ev: Event) -> None:
        if isinstance(ev, NewOrder):
            self._checked_new.inc()
            self._new.inc()
        elif isinstance(ev, (Replace, Cancel)):
            self.checked.labels(KINDS[ev.kind]).inc()
            self.accepted.labels(KINDS[ev.kind]).inc()
        elif isinstance(ev, Rejected):
            kind = KINDS.get(ev.request_kind, "new")
            self.checked.labels(kind).inc()
            self.rejected.labels(kind, ev.code or "UNKNOWN").inc()
        elif isinstance(ev, Execution) and ev.is_fill:
            self.fills.labels(ev.exec_type).inc()
            return
        elif isinstance(ev, Breaker):
            if ev.action == "trip":
                self.breaker_trips.labels(ev.code).inc()
            return
        elif isinstance(ev, Surveillance):
            self.alerts.labels(ev.code).inc()
            return
        else:
            return
        for code, _value, _limit in ev.warnings:
            self.warned.labels(code).inc()
        if ev.check_ns is not None:
            self.check_latency.observe(ev.check_ns / 1e9)

    def serve(self, host: str, port: int) -> None:
        start_http_server(port, addr=host, registry=self.registry)
        log.info("metrics endpoint up", extra={"url": f"http://{host}:{port}/metrics"})
