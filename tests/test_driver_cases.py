"""Data-driven driver tests: each file in driver_cases/ is a device config, register contents and
the samples a correct reader must produce, run against a real pymodbus server.

Register values in a case are either raw ``words`` written out by hand, or a typed ``value`` that
this test encodes with ``struct`` (big-endian, high word first) — not with the agent's decoder."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge_agent.config import parse_config
from edge_agent.drivers.modbus import ModbusTcpDriver
from parkmon.common import quality
from tests.modbus_server import register_server

CASES = sorted((Path(__file__).parent / "driver_cases").glob("*.yaml"))
_FMT = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f", "float64": ">d"}


def _words(entry: dict[str, Any]) -> list[int]:
    if "words" in entry:
        return [int(w) for w in entry["words"]]
    raw = struct.pack(_FMT[entry["type"]], entry["value"])
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


@pytest.mark.parametrize("case_file", CASES, ids=[c.stem for c in CASES])
def test_driver_case(case_file: Path) -> None:
    case = yaml.safe_load(case_file.read_text(encoding="utf-8"))
    tables: dict[str, dict[int, int]] = {}
    for entry in case["registers"]:
        for i, w in enumerate(_words(entry)):
            tables.setdefault(entry["table"], {})[int(entry["address"]) + i] = w
    unit = int(case["device"].get("unit", 1))
    with register_server({unit: tables}, size=case.get("server_size")) as port:
        cfg = parse_config({"gateway": {"park": "p", "enterprise": "e", "id": "g"},
                            "devices": [{**case["device"], "port": port}]}, str(case_file))

        async def read() -> tuple[list[tuple[str, int, float | None, int]], int]:
            drv = ModbusTcpDriver(cfg.devices[0])
            await drv.open()
            try:
                return await drv.read(), drv.requests
            finally:
                await drv.close()

        samples, requests = asyncio.run(read())
    got = {key: (value, q) for key, _ts, value, q in samples}
    for key, want in case["expected"].items():
        value, q = got[key]
        if isinstance(want, str):
            assert quality.describe(q) == want, f"{key}: {value} {quality.describe(q)}"
            assert value is None
        else:
            assert q == quality.GOOD, f"{key}: {quality.describe(q)}"
            assert value == pytest.approx(want, rel=1e-6), key
    if "requests" in case:
        assert requests == case["requests"], f"{case['description']}: {requests} requests"
