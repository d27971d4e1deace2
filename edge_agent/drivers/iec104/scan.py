"""``parkmon edge scan --iec104``: what a station reports, to write its points from.

Connects, starts the link, sends a general and a counter interrogation (to common address 65535, every
station behind the link, unless told one) and lists each information object that answered: common address,
IOA, type, value, quality and time tag, one JSON line each, sorted by address.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass

from edge_agent.drivers.iec104 import asdu
from edge_agent.drivers.iec104.driver import flags_quality
from edge_agent.drivers.iec104.link import Link, LinkError, Params
from parkmon.common import quality

BROADCAST = 0xFFFF


@dataclass(frozen=True)
class Found:
    common_address: int
    ioa: int
    type_id: int
    value: float | None
    quality: int
    time_ms: int | None
    cot: int

    def as_json(self) -> str:
        try:
            name = asdu.Type(self.type_id).name
        except ValueError:
            name = str(self.type_id)
        return json.dumps({"ca": self.common_address, "ioa": self.ioa, "type": name, "value": self.value,
                           "quality": quality.describe(self.quality), "time": self.time_ms, "cot": self.cot})


async def scan_station(host: str, port: int, common_address: int = BROADCAST, within_s: float = 30.0,
                       params: Params | None = None) -> list[Found]:
    """Everything the station answers to GI and CI within ``within_s``. Raises LinkError / OSError when the
    link does not start."""
    found: dict[tuple[int, int], Found] = {}
    waiting = {int(asdu.Type.C_IC_NA_1), int(asdu.Type.C_CI_NA_1)}
    done = asyncio.Event()
    askers: list[asyncio.Task[None]] = []

    def on_asdu(raw: bytes) -> None:
        try:
            a = asdu.decode(raw)
        except asdu.AsduError:
            return
        for o in a.objects:
            q = flags_quality(o.flags & ~asdu.TIME_IV)
            found[(a.common_address, o.ioa)] = Found(a.common_address, o.ioa, a.type_id, o.value, q, o.time_ms, a.cot)
        if a.type_id in waiting and (a.cot == asdu.Cot.ACTIVATION_TERMINATION or a.negative
                                     or a.cot >= asdu.Cot.UNKNOWN_TYPE):
            waiting.discard(a.type_id)
            if not waiting:
                done.set()

    async def ask() -> None:
        await link.send_asdu(asdu.command(asdu.Type.C_IC_NA_1, asdu.QOI_STATION, common_address))
        await link.send_asdu(asdu.command(asdu.Type.C_CI_NA_1, asdu.QCC_GENERAL_READ, common_address))

    link = Link(host, port, params or Params(), on_asdu, lambda: askers.append(asyncio.create_task(ask())))
    runner = asyncio.create_task(link.run())
    finished = asyncio.create_task(done.wait())
    try:
        await asyncio.wait({runner, finished}, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
        if runner.done() and not link.was_started:
            runner.result()  # why it did not start
    finally:
        link.close()
        for t in (runner, finished, *askers):
            t.cancel()
        with contextlib.suppress(asyncio.CancelledError, LinkError, OSError):
            await runner
    return [found[k] for k in sorted(found)]


def main(host: str | None, port: int, common_address: int, within_s: float | None) -> int:
    """The command: 0 when objects answered, 1 when none did or the link did not start, 2 for bad arguments."""
    import sys

    if not host:
        print("parkmon edge scan --iec104: give --host HOST (the station; --port defaults to 2404)", file=sys.stderr)
        return 2
    if not 0 <= common_address <= 0xFFFF:
        print(f"parkmon edge scan --iec104: --ca {common_address}: a common address is 1-65534, or 65535 for every "
              "station", file=sys.stderr)
        return 2
    try:
        found = asyncio.run(scan_station(host, port, common_address, 30.0 if within_s is None else within_s))
    except (LinkError, OSError) as exc:
        print(f"parkmon edge scan --iec104: {host}:{port}: {exc}", file=sys.stderr)
        return 1
    for f in found:
        print(f.as_json())
    stations = sorted({f.common_address for f in found})
    print(f"{len(found)} information object(s) from common address(es) {', '.join(map(str, stations)) or '-'} "
          f"on {host}:{port}", file=sys.stderr)
    return 0 if found else 1
