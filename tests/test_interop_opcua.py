"""The OPC UA driver against a server parkmon did not write: node-opcua (tests/js-peers/opcua_server.js), where
tests/test_opcua.py talks to asyncua, the library the driver itself is built on. The gateway's config is loaded
from YAML as a site would write it; what the peer holds is written out below, and the samples must carry it as
sent: the value of each data type (x the point's scale), the peer's source timestamp, its status as quality.

Source timestamps: 2024-03-01T08:00:00Z = 1 709 280 000 s since 1970 (54 years to 2024-01-01 with 13 leap
days = 19 723 days, + 31 + 29 = 19 783 days x 86 400 s = 1 709 251 200 s, + 8 h x 3 600 s = 28 800 s).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from edge_agent.config import load_config
from edge_agent.drivers.base import Driver, Sample, create_driver
from parkmon.common import quality
from parkmon.common.netutil import free_port
from parkmon.common.quality import Reason
from tests.interop_peers import JS_PEERS, Peer, node_peer

T0 = 1_709_280_000_000  # 2024-03-01T08:00:00Z in ms (module docstring)
# a GUID node id, as some servers number their nodes; its hex digits may be written in either case
GUID = "09087E75-8E5E-499B-954F-F2A9603DB28A"

# name, OPC UA data type, value the peer holds, its status, its source timestamp
VARIABLES: list[dict[str, object]] = [
    {"name": "Flow", "type": "Double", "value": 12.5, "status": "Good", "ts": "2024-03-01T08:00:00.123Z"},
    {"name": "Freq", "type": "Float", "value": 49.98, "status": "Good", "ts": "2024-03-01T08:00:01.000Z"},
    {"name": "Energy", "type": "Int32", "value": -123456, "status": "Good", "ts": "2024-03-01T08:00:02.500Z"},
    {"name": "State", "type": "UInt16", "value": 65535, "status": "Good", "ts": "2024-03-01T08:00:03.000Z"},
    {"name": "Alarm", "type": "Boolean", "value": True, "status": "Good", "ts": "2024-03-01T08:00:04.000Z"},
    {"name": "Count", "type": "UInt32", "value": 4_000_000_000, "status": "Good", "ts": "2024-03-01T08:00:04.001Z"},
    {"name": "Temp", "type": "Int16", "value": -32768, "status": "Good", "ts": "2024-03-01T08:00:04.999Z"},
    {"name": "Held", "type": "Double", "value": 230.0, "status": "UncertainLastUsableValue",
     "ts": "2024-03-01T08:00:05.000Z"},
    {"name": "Broken", "type": "Double", "value": 7.0, "status": "BadSensorFailure", "ts": "2024-03-01T08:00:06.000Z"},
    # read only by the node id spelling tests below
    {"name": "Level", "type": "Double", "value": 3.25, "status": "Good", "nodeId": f"g={GUID}",
     "ts": "2024-03-01T08:00:07.000Z"},
]

# device.point -> (value, source time in ms, quality) as the peer sent them
EXPECTED: dict[str, tuple[float | None, int, int]] = {
    "flow.flow": (12.5, T0 + 123, quality.GOOD),
    # a Float travels as IEEE single: 49.98 x 2^18 = 13 101 957.12, rounded to 13 101 957, / 2^18 = 49.9799995...
    "flow.freq": (13_101_957 / 2**18, T0 + 1_000, quality.GOOD),
    # Int32 -123456 x scale 0.001 = -123.456 (signed: read as unsigned it would be 4 294 843 840)
    "flow.energy": (-123.456, T0 + 2_500, quality.GOOD),
    # UInt16 65535 is the top of its range, not -1
    "flow.state": (65535.0, T0 + 3_000, quality.GOOD),
    "flow.alarm": (1.0, T0 + 4_000, quality.GOOD),
    # UInt32 above 2^31 - 1 = 2 147 483 647: unsigned, not negative
    "flow.count": (4_000_000_000.0, T0 + 4_001, quality.GOOD),
    # Int16 -32768 (0x8000) is a value of its own here, not a "no reading" sentinel, x 0.1 = -3276.8
    "flow.temp": (-3276.8, T0 + 4_999, quality.GOOD),
    # Uncertain (0x40900000): the value stays, flagged as a held one
    "flow.held": (230.0, T0 + 5_000, quality.uncertain(Reason.LAST_USABLE)),
    # Bad (0x808C0000): the value the peer put beside it is not passed on
    "flow.broken": (None, T0 + 6_000, quality.bad(Reason.SENSOR_FAILURE)),
}

# point name, metric, the peer's variable, scale
POINTS = [
    ("flow", "water.flow", "ns=1;s=Meter.Flow", 1.0), ("freq", "elec.frequency", "ns=1;s=Meter.Freq", 1.0),
    ("energy", "heat.energy", "ns=1;s=Meter.Energy", 0.001), ("state", "device.state", "ns=1;s=Meter.State", 1.0),
    ("alarm", "safety.fire_alarm", "ns=1;s=Meter.Alarm", 1.0), ("count", "water.volume", "ns=1;s=Meter.Count", 1.0),
    ("temp", "safety.temperature", "ns=1;s=Meter.Temp", 0.1), ("held", "elec.voltage", "ns=1;s=Meter.Held", 1.0),
    ("broken", "elec.voltage", "ns=1;s=Meter.Broken", 1.0),
]


def _start(port: int, pki: Path) -> Peer:
    node = node_peer("node-opcua")
    return Peer([node, "opcua_server.js", str(port), str(pki), json.dumps(VARIABLES)], cwd=JS_PEERS)


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[tuple[Peer, int]]:
    """A server of this test's own: for tests that change its variables or stop it."""
    port = free_port()
    server = _start(port, tmp_path / "pki")
    try:
        yield server, port
    finally:
        server.stop()


@pytest.fixture(scope="module")
def unchanged_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Peer, int]]:
    """One server for the tests that only read it (node-opcua takes seconds to start)."""
    port = free_port()
    server = _start(port, tmp_path_factory.mktemp("opcua") / "pki")
    try:
        yield server, port
    finally:
        server.stop()


def _driver(tmp_path: Path, port: int, mode: str,
            points: list[tuple[str, str, str, float]] = POINTS) -> Driver:
    config = {
        "gateway": {"park": "p1", "enterprise": "e1", "id": "gw1"},
        "devices": [{
            "id": "flow", "driver": "opcua", "endpoint": f"opc.tcp://127.0.0.1:{port}/parkmon-peer",
            "opcua_mode": mode, "timeout_s": 2.0, "poll_interval_s": 0.2,
            "points": [{"name": name, "metric": metric, "node_id": node_id, "scale": scale}
                       for name, metric, node_id, scale in points],
        }],
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return create_driver(load_config(path).devices[0])


def _by_point(samples: list[Sample]) -> dict[str, tuple[float | None, int, int]]:
    return {key: (value, ts, q) for key, ts, value, q in samples}


def _answered(samples: list[Sample]) -> list[Sample]:
    """The samples the server sent: not the driver's own "no connection" ones."""
    return [s for s in samples if s[3] != quality.bad(Reason.COMM_FAILURE)]


def _until(driver: Driver, loop: asyncio.AbstractEventLoop, done: Callable[[list[Sample]], bool],
           within_s: float = 20.0) -> list[Sample]:
    """Read every 0.2 s until ``done(samples so far)``."""
    got: list[Sample] = []
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        got += loop.run_until_complete(driver.read())
        if done(got):
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out; samples so far: {got}")


def test_poll_reads_each_type_status_and_source_time_as_sent(unchanged_peer: tuple[Peer, int], tmp_path: Path) -> None:
    _, port = unchanged_peer
    driver = _driver(tmp_path, port, "poll")
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(driver.open())
        samples = loop.run_until_complete(driver.read())
    finally:
        loop.run_until_complete(driver.close())
        loop.close()
    assert _by_point(samples) == EXPECTED


def test_subscription_carries_changes_with_the_peers_time_and_status(peer: tuple[Peer, int], tmp_path: Path) -> None:
    server, port = peer
    driver = _driver(tmp_path, port, "subscription")
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(driver.open())
        first = _until(driver, loop, lambda s: set(_by_point(s)) == set(EXPECTED))
        assert _by_point(first) == EXPECTED, "the initial notifications carry what the peer holds"

        # the flow goes bad, then comes back with a new reading; each change carries the peer's own time. The
        # second is sent once the first has arrived: a monitored item's queue of one keeps only the newest
        server.command(json.dumps({"name": "Flow", "value": 12.5, "status": "BadCommunicationError",
                                   "ts": "2024-03-01T08:01:00.000Z"}))
        changes = _until(driver, loop, lambda s: any(k == "flow.flow" for k, *_ in s))
        server.command(json.dumps({"name": "Flow", "value": 13.75, "status": "Good",
                                   "ts": "2024-03-01T08:01:30.250Z"}))
        changes += _until(driver, loop, lambda s: any(k == "flow.flow" for k, *_ in s))
        flow = [(v, ts, q) for k, ts, v, q in changes if k == "flow.flow"]
        # 08:01:00 = T0 + 60 s; 08:01:30.250 = T0 + 90.25 s
        assert flow == [(None, T0 + 60_000, quality.bad(Reason.COMM_FAILURE)), (13.75, T0 + 90_250, quality.GOOD)]
        assert {k for k, *_ in changes} == {"flow.flow"}, "points that did not change are not sent again"
    finally:
        loop.run_until_complete(driver.close())
        loop.close()


def test_subscription_after_the_server_restarts(peer: tuple[Peer, int], tmp_path: Path) -> None:
    server, port = peer
    driver = _driver(tmp_path, port, "subscription")
    loop = asyncio.new_event_loop()
    restarted: Peer | None = None
    try:
        loop.run_until_complete(driver.open())
        _until(driver, loop, lambda s: set(_by_point(s)) == set(EXPECTED))
        server.stop()
        down = loop.run_until_complete(driver.read())
        assert {(key, value, q) for key, _, value, q in down} == {
            (key, None, quality.bad(Reason.COMM_FAILURE)) for key in EXPECTED}
        restarted = _start(port, tmp_path / "pki")  # the same server again, on the same port
        # until it has reconnected, each cycle reports every point bad again: those are left out here
        back = _until(driver, loop, lambda s: set(_by_point(_answered(s))) == set(EXPECTED), within_s=30)
        assert _by_point(_answered(back)) == EXPECTED
    finally:
        loop.run_until_complete(driver.close())
        loop.close()
        if restarted is not None:
            restarted.stop()


# nodes written the way a site's config may hold them: ns=0 spelled out, a GUID in capitals
SPELLINGS = [("flow", "water.flow", "ns=1;s=Meter.Flow", 1.0), ("level", "water.flow", f"ns=1;g={GUID}", 1.0),
             ("service_level", "device.state", "ns=0;i=2267", 1.0)]  # the server's ServiceLevel (Part 5)


def test_poll_reads_node_ids_in_any_valid_spelling(unchanged_peer: tuple[Peer, int], tmp_path: Path) -> None:
    driver = _driver(tmp_path, unchanged_peer[1], "poll", SPELLINGS)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(driver.open())
        got = _by_point(loop.run_until_complete(driver.read()))
    finally:
        loop.run_until_complete(driver.close())
        loop.close()
    assert got["flow.level"] == (3.25, T0 + 7_000, quality.GOOD)
    assert got["flow.service_level"][2] == quality.GOOD


# fixed: a notification finds its point whatever valid spelling the config used (it failed before: asyncua
# writes ns=0;i=2267 back as i=2267 and GUIDs in lower case, and the driver looked it up by the config's text)
def test_subscription_matches_node_ids_in_any_valid_spelling(unchanged_peer: tuple[Peer, int], tmp_path: Path) -> None:
    driver = _driver(tmp_path, unchanged_peer[1], "subscription", SPELLINGS)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(driver.open())
        # the initial notifications of all three come in one publish: once flow is here, the others are too
        got = _by_point(_until(driver, loop, lambda s: any(k == "flow.flow" for k, *_ in s)))
        loop.run_until_complete(asyncio.sleep(0.5))
        got.update(_by_point(loop.run_until_complete(driver.read())))
    finally:
        loop.run_until_complete(driver.close())
        loop.close()
    assert set(got) == {"flow.flow", "flow.level", "flow.service_level"}
    assert got["flow.level"] == (3.25, T0 + 7_000, quality.GOOD)


# fixed: a refused monitored item (BadNodeIdUnknown, a typo in node_id) gets a bad sample each cycle (before,
# asyncua returned its status without raising and the point was silent for good)
def test_subscription_reports_a_node_the_server_lacks_as_bad(unchanged_peer: tuple[Peer, int], tmp_path: Path) -> None:
    points = [("flow", "water.flow", "ns=1;s=Meter.Flow", 1.0), ("typo", "water.flow", "ns=1;s=Meter.Flwo", 1.0)]
    driver = _driver(tmp_path, unchanged_peer[1], "subscription", points)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(driver.open())
        got = _until(driver, loop, lambda s: any(k == "flow.flow" for k, *_ in s))
        for _ in range(3):  # three more cycles: a refused point has had its chance to be reported
            time.sleep(0.2)
            got += loop.run_until_complete(driver.read())
    finally:
        loop.run_until_complete(driver.close())
        loop.close()
    typo = [(value, quality.quality_class(q)) for key, _, value, q in got if key == "flow.typo"]
    assert typo and all(s == (None, quality.QualityClass.BAD) for s in typo)
