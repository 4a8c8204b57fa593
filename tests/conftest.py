"""Shared fixtures: a real venue simulator, a real gateway and real OMS clients, all QuickFIX, on 127.0.0.1."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass
class Stack:
    """The demo's arrangement under test control: start and stop each part, add clients."""

    tmp: Path
    cfg: "object"
    sim_cfg: "object"
    sim: "object | None" = None
    gw: "object | None" = None
    clients: list["object"] = field(default_factory=list)

    def start_sim(self) -> "object":
        from sim.venue import VenueSim

        self.sim = VenueSim(self.sim_cfg)  # type: ignore[arg-type]
        self.sim.start()
        return self.sim

    def start_gateway(self, wait_venue: bool = True) -> "object":
        from gateway.service import Gateway

        self.gw = Gateway(self.cfg)  # type: ignore[arg-type]
        self.gw.start()
        if wait_venue:
            assert self.gw.venue_logged_on.wait(15), "venue session did not log on"
        return self.gw

    def stop_gateway(self) -> None:
        if self.gw is not None:
            self.gw.stop()
            self.gw = None

    def client(self, sender: str = "OMS1", target: str = "FIXGW", name: str | None = None,
               logon: bool = True, reset_on_logon: bool = False) -> "object":
        from sim.oms_client import OmsClient

        c = OmsClient(sender, target, self.cfg.acceptor.port, self.tmp / (name or sender.lower()),  # type: ignore
                      reset_on_logon=reset_on_logon)
        c.start()
        self.clients.append(c)
        if logon:
            assert c.wait_logon(15), f"{sender} did not log on"
        return c

    def stop_client(self, c: "object") -> None:
        c.stop()  # type: ignore[attr-defined]
        self.clients.remove(c)

    def close(self) -> None:
        for c in list(self.clients):
            self.stop_client(c)
        self.stop_gateway()
        if self.sim is not None:
            self.sim.stop()  # type: ignore[attr-defined]
            self.sim = None


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    from sim.demo import demo_configs

    from config.settings import ControlsSettings

    cfg, sim_cfg = demo_configs(tmp_path)
    # The demo spoils its drop copy on purpose, runs a market-data feed and the controls beyond limits; tests
    # choose their own faults, and turn the feed and the controls on where they test them.
    cfg = cfg.model_copy(update={"marketdata": None, "controls": ControlsSettings()})
    s = Stack(tmp_path, cfg, sim_cfg.model_copy(update={"dropcopy_faults": [], "marketdata": [], "prices": {}}))
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def running(stack: Stack) -> Stack:
    """Venue simulator and gateway up, venue session logged on."""
    stack.start_sim()
    stack.start_gateway()
    return stack

