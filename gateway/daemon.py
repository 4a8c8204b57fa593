"""`fixgw run`: the gateway in the foreground, with its control plane on an asyncio loop (uvloop).

QuickFIX's threads carry the order path; the loop only does housekeeping and waits for a stop signal.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import uvloop

from config.settings import GatewayConfig
from gateway.service import Gateway

log = logging.getLogger("fixgw.daemon")

HOUSEKEEPING_S = 0.2


async def serve(gw: Gateway, stop: asyncio.Event) -> None:
    gw.start()
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), HOUSEKEEPING_S)
            except TimeoutError:
                pass
            gw.housekeeping()
    finally:
        log.info("stopping: no new orders, logging sessions out")
        await asyncio.to_thread(gw.stop)


def run(cfg: GatewayConfig) -> int:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(Gateway(cfg), stop)

    uvloop.run(main())
    return 0
