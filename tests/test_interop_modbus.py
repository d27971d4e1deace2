"""The Modbus driver against a server parkmon did not write: modbus-serial's ServerTCP
(tests/js-peers/modbus_server.js), where tests/test_edge_modbus.py talks to pymodbus, the library the driver
itself is built on. The peer holds the raw words written out below; the expected values are worked from those
words by hand, so a word-order, sign or scale mistake shared by parkmon's encoder and decoder cannot hide.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from edge_agent.config import DeviceConfig, load_config
from edge_agent.drivers.base import Sample, create_driver
from parkmon.common import quality
from parkmon.common.netutil import free_port
from parkmon.common.quality import Reason
from tests.interop_peers import JS_PEERS, Peer, node_peer

UNIT = 7

# the device's memory: address -> raw 16-bit word (or bit), as a register dump would show it
TABLES: dict[str, dict[int, int | bool]] = {
    "holding": {
        0: 0x437A, 1: 0x8000,  # float32 ABCD 0x437A8000
        2: 0xC14C, 3: 0x0000,  # float32 ABCD 0xC14C0000
        4: 0xEB85, 5: 0x4247,  # float32 CDAB: low word first, 0x4247EB85
        6: 0xFF38,  # int16
        7: 0x0001, 8: 0xE240,  # uint32 ABCD 0x0001E240
        9: 0x7960, 10: 0xFFFE,  # int32 CDAB 0xFFFE7960
        11: 0xFFFF, 12: 0xFFFE,  # uint32 ABCD 0xFFFFFFFE
        # 13 is not there: the peer answers exception 02 (illegal data address) for any read touching it
    },
    "input": {0: 0x8000, 1: 0x437A, 2: 0xFFFF},  # float32 CDAB 0x437A8000; uint16
    "coil": {0: True, 1: False, 2: True},
    "discrete": {0: False, 1: True},
}

# name, metric, table, address, type, order, scale
POINTS = [
    ("p_abcd", "elec.active_power", "holding", 0, "float32", "ABCD", 1.0),
    ("p_neg", "elec.active_power", "holding", 2, "float32", "ABCD", 1.0),
    ("f_cdab", "elec.frequency", "holding", 4, "float32", "CDAB", 1.0),
    ("t_int16", "safety.temperature", "holding", 6, "int16", "ABCD", 0.1),
    ("e_uint32", "elec.import.energy", "holding", 7, "uint32", "ABCD", 0.01),
    ("e_int32", "elec.export.energy", "holding", 9, "int32", "CDAB", 0.001),
    ("big_uint32", "water.volume", "holding", 11, "uint32", "ABCD", 1.0),
    ("missing", "water.flow", "holding", 13, "uint16", "ABCD", 1.0),
    ("p_input", "pv.power", "input", 0, "float32", "CDAB", 1.0),
    ("state", "device.state", "input", 2, "uint16", "ABCD", 1.0),
    ("alarm", "safety.fire_alarm", "coil", 0, "bit", "ABCD", 1.0),
    ("fault", "safety.fire_fault", "coil", 1, "bit", "ABCD", 1.0),
    ("valve", "safety.valve_state", "coil", 2, "bit", "ABCD", 1.0),
    ("gate", "safety.gate_state", "discrete", 1, "bit", "ABCD", 1.0),
]

GOOD = quality.GOOD
EXPECTED: dict[str, tuple[float | None, int]] = {
    # 0x437A8000: sign 0, exponent 0x86 = 134 -> 2^7, mantissa 1 + 0x7A8000 / 2^23 = 1.95703125 -> 250.5
    "m.p_abcd": (250.5, GOOD),
    # 0xC14C0000: sign 1, exponent 0x82 = 130 -> 2^3, mantissa 1 + 0x4C0000 / 2^23 = 1.59375 -> -12.75
    "m.p_neg": (-12.75, GOOD),
    # 0x4247EB85: exponent 0x84 = 132 -> 2^5, mantissa (2^23 + 0x47EB85 = 13 101 957) / 2^23 -> 13 101 957 / 2^18
    # = 49.9799995... (the float32 nearest 49.98)
    "m.f_cdab": (13_101_957 / 2**18, GOOD),
    # 0xFF38 = 65 336 - 65 536 = -200, x 0.1 = -20.0
    "m.t_int16": (-20.0, GOOD),
    # 0x0001E240 = 65 536 + 57 920 = 123 456, x 0.01 = 1234.56
    "m.e_uint32": (1234.56, GOOD),
    # 0xFFFE7960 = 4 294 867 296 - 2^32 = -100 000, x 0.001 = -100.0
    "m.e_int32": (-100.0, GOOD),
    # 0xFFFFFFFE = 2^32 - 2 = 4 294 967 294: unsigned, not -2
    "m.big_uint32": (4_294_967_294.0, GOOD),
    # the device refused the register: this point alone is lost, as a device failure
    "m.missing": (None, quality.bad(Reason.DEVICE_FAILURE)),
    "m.p_input": (250.5, GOOD),  # input 0-1 hold 0x8000, 0x437A: CDAB of 0x437A8000, worked out above
    "m.state": (65535.0, GOOD),  # 0xFFFF as uint16
    "m.alarm": (1.0, GOOD), "m.fault": (0.0, GOOD), "m.valve": (1.0, GOOD), "m.gate": (1.0, GOOD),
}


def _start(port: int) -> Peer:
    node = node_peer("modbus-serial")
    tables = {table: {str(a): w for a, w in words.items()} for table, words in TABLES.items()}
    return Peer([node, "modbus_server.js", str(port), str(UNIT), json.dumps(tables)], cwd=JS_PEERS)


@pytest.fixture
def peer_port() -> Iterator[int]:
    port = free_port()
    server = _start(port)
    try:
        yield port
    finally:
        server.stop()


def _device(tmp_path: Path, port: int, unit: int = UNIT) -> DeviceConfig:
    points = [{"name": n, "metric": m, "table": t, "address": a, "type": ty, "order": o, "scale": s}
              for n, m, t, a, ty, o, s in POINTS]
    config = {"gateway": {"park": "p1", "enterprise": "e1", "id": "gw1"},
              "devices": [{"id": "m", "driver": "modbus_tcp", "host": "127.0.0.1", "port": port, "unit": unit,
                           "timeout_s": 1.0, "points": points}]}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_config(path).devices[0]


def _read(device: DeviceConfig) -> list[Sample]:
    async def go() -> list[Sample]:
        driver = create_driver(device)  # pymodbus' client belongs to the loop it is made in
        await driver.open()
        try:
            return await driver.read()
        finally:
            await driver.close()

    return asyncio.run(go())


def test_values_as_the_peer_holds_them(peer_port: int, tmp_path: Path) -> None:
    samples = _read(_device(tmp_path, peer_port))
    assert {key: (value, q) for key, _, value, q in samples} == EXPECTED


def test_a_unit_the_peer_is_not_gives_bad_samples_not_values(peer_port: int, tmp_path: Path) -> None:
    # modbus-serial's server stays silent for another unit id, as a device on a shared line does
    samples = _read(_device(tmp_path, peer_port, unit=UNIT + 1))
    assert {(value, q) for _, _, value, q in samples} == {(None, quality.bad(Reason.COMM_FAILURE))}
    assert len(samples) == len(POINTS)


def test_peer_gone_then_back_on_the_same_port(tmp_path: Path) -> None:
    port = free_port()
    device = _device(tmp_path, port)
    server = _start(port)

    async def cycles() -> list[list[Sample]]:
        driver = create_driver(device)
        await driver.open()
        try:
            first = await driver.read()
            server.stop()  # the device goes away: its connection is closed under the driver
            down = await driver.read()
            restarted = _start(port)
            try:
                back = await driver.read()
            finally:
                restarted.stop()
            return [first, down, back]
        finally:
            await driver.close()

    try:
        first, down, back = asyncio.run(cycles())
    finally:
        server.stop()
    assert {k: (v, q) for k, _, v, q in first} == EXPECTED
    assert {(v, q) for _, _, v, q in down} == {(None, quality.bad(Reason.COMM_FAILURE))}
    assert len(down) == len(POINTS), "every point is reported bad, none re-sent as fresh"
    assert {k: (v, q) for k, _, v, q in back} == EXPECTED, "the next cycle reconnects"
