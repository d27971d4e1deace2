"""A station that sends its unacknowledged frames again after a reconnect (as the standard lets a station keep
them): the driver hands each time-tagged reading over once. The station is scripted here, every frame written
out by hand, because the library used elsewhere (c104) does not resend; the frames' layout is worked out in
tests/test_iec104_codec.py (time tag 2026-12-07 10:00:00.123 UTC = 1 796 637 600 123 ms)."""

from __future__ import annotations

import asyncio
import time

from edge_agent.drivers.iec104.driver import Iec104Config, Iec104Driver
from parkmon.common import quality

TAG_MS = 1_796_637_600_123


def i_frame(ns: int, asdu: bytes) -> bytes:
    """68, length, N(S) << 1 (two octets), N(R) 0 (two octets), the ASDU."""
    return bytes((0x68, 4 + len(asdu), (ns << 1) & 0xFF, ns >> 7, 0, 0)) + asdu


# GI and CI activation termination (cause 10) for common address 1: QOI 20, QCC 5
GI_END = bytes.fromhex("64010A000100" "000000" "14")
CI_END = bytes.fromhex("65010A000100" "000000" "05")


def power(value_le: str, ms_le: str) -> bytes:
    """M_ME_TF_1 (36), cause 3, CA 1, IOA 101 = 65 00 00, the float, QDS 00, then minute 00, hour 0A, Monday the
    7th (27), December (0C), 2026 (1A) after the milliseconds."""
    return bytes.fromhex("240103000100" "650000" + value_le + "00" + ms_le + "00" "0A" "27" "0C" "1A")


# 1.0 = 0x3F800000, 2.0 = 0x40000000, 3.0 = 0x40400000, 4.0 = 0x40800000 (little-endian below);
# 123 ms = 0x007B, 1 123 = 0x0463, 2 123 = 0x084B, 3 123 = 0x0C33
READINGS = [power("0000803F", "7B00"), power("00000040", "6304"), power("00004040", "4B08")]
NEW = power("00008040", "330C")


async def station(first: asyncio.Event) -> tuple[asyncio.Server, int]:
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        got = b""
        while bytes.fromhex("680407000000") not in got:  # STARTDT act
            got += await reader.read(64)
        writer.write(bytes.fromhex("68040B000000"))  # STARTDT con
        # the three readings; on the second connection sent again (never acknowledged), then one new
        frames = [GI_END, CI_END, *READINGS] + ([NEW] if connections == 2 else [])
        writer.write(b"".join(i_frame(ns, a) for ns, a in enumerate(frames)))
        await writer.drain()
        if connections == 1:
            await first.wait()  # the driver has taken them: now the station "restarts"
            writer.close()
            return
        while await reader.read(64):
            pass

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_frames_sent_again_after_a_reconnect_are_handed_over_once() -> None:
    async def run() -> list[tuple[int, float | None, int]]:
        first = asyncio.Event()
        server, port = await station(first)
        drv = Iec104Driver(Iec104Config.model_validate({
            "id": "sub", "driver": "iec104", "host": "127.0.0.1", "port": port, "reconnect_min_s": 0.1,
            "points": [{"name": "p", "metric": "elec.active_power", "ioa": 101}]}))
        await drv.open()
        got: list[tuple[int, float | None, int]] = []
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len([g for g in got if g[1] is not None]) < 4:
                got += [(ts, v, q) for _, ts, v, q in await drv.read() if v is not None]
                if len(got) == 3:
                    first.set()
                await asyncio.sleep(0.05)
            assert drv.connects == 2
        finally:
            await drv.close()
            server.close()
        return got

    got = asyncio.run(run())
    assert got == [(TAG_MS, 1.0, quality.GOOD), (TAG_MS + 1000, 2.0, quality.GOOD), (TAG_MS + 2000, 3.0, quality.GOOD),
                   (TAG_MS + 3000, 4.0, quality.GOOD)]
