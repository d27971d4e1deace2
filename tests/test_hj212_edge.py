"""The gateway's HJ 212 side over real TCP: loggers dial in (answers, checks, dead letters, samples through
mosquitto and ingest into a store) and the gateway reports upstream as a data logger would."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from edge_agent.agent import Agent
from edge_agent.config import parse_config
from edge_agent.hj212.forwarder import Forwarder
from ingest.mqtt.broker import Mosquitto
from ingest.mqtt.config import IngestConfig
from ingest.mqtt.consumer import Ingestor
from ingest.store import open_store
from parkmon.common import hj212, quality
from parkmon.common.hj212 import Packet
from tests.mqtt_util import wait_for
from tests.test_edge_agent_mqtt import running

MN, PW = "010000A8900016F000169DC0", "123456"
T0 = 1_795_363_200_000  # 2026-11-23 00:00 China time


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _agent(tmp: Path, mqtt_port: int, hj_port: int, **extra: object) -> Agent:
    raw: dict[str, object] = {
        "gateway": {"park": "demo", "enterprise": "e01", "id": "gw-e01"},
        "mqtt": {"port": mqtt_port}, "buffer": {"path": str(tmp / "buffer.db")},
        "publish": {"interval_s": 0.2, "health_interval_s": 5}, "poll_interval_s": 0.2,
        "devices": [{"id": "cems1", "name": "1#锅炉烟气排口", "driver": "hj212", "host": "127.0.0.1", "port": hj_port,
                     "mn": MN, "pw": PW, "st": "31"}],
    }
    raw.update(extra)
    return Agent(parse_config(raw))


def _upload(cn: str, when: int, values: dict[str, dict[str, float]], flags: dict[str, str], qn_ms: int,
            pw: str = PW, mn: str = MN) -> Packet:
    return Packet("31", cn, pw, mn, hj212.cp_of(when, values, flags), hj212.make_qn(qn_ms), 5)


async def _exchange(port: int, frames: list[bytes], replies: int) -> list[hj212.Packet]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for f in frames:
        writer.write(f)
    await writer.drain()
    framer, got = hj212.Framer(), []
    while len(got) < replies:
        data = await asyncio.wait_for(reader.read(4096), 5)
        if not data:
            break
        got += [hj212.parse(x) for x in framer.feed(data) if isinstance(x, bytes)]
    writer.close()
    return got


def test_loggers_dial_in_and_their_records_reach_the_store(mosquitto: Mosquitto, tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    ing = Ingestor(IngestConfig(mqtt_port=mosquitto.port, db_url=store.url), store)
    ing.start()
    port = _free_port()
    agent = _agent(tmp_path, mosquitto.port, port)
    rt = _upload("2011", T0, {"a21026": {"Rtd": 35.2, "ZsRtd": 41.0}, "a19001": {"Rtd": 9.2}},
                 {"a21026": "N", "a19001": "C"}, T0 + 1)
    hour = _upload("2061", T0 - 3_600_000, {"a21026": {"Avg": 30.1, "Min": 20.0, "Max": 44.5, "ZsAvg": 33.3,
                                                       "Cou": 1.25}}, {"a21026": "N"}, T0 + 2)
    big = {f"a{21000 + i:05d}": {"Rtd": float(i)} for i in range(70)} | {"a34013": {"Rtd": 4.1}}
    split = hj212.split(_upload("2011", T0 + 60_000, big, {"a34013": "N"}, T0 + 3))
    bad_crc = hj212.build(_upload("2011", T0 + 120_000, {"a21026": {"Rtd": 1.0}}, {}, T0 + 4))
    bad_crc = bad_crc[:-6] + f"{int(bad_crc[-6:-2], 16) ^ 1:04X}".encode() + b"\r\n"
    wrong_pw = hj212.build(_upload("2011", T0, {"a21026": {"Rtd": 1.0}}, {}, T0 + 5, pw="654321"))
    stranger = hj212.build(_upload("2011", T0, {"a21026": {"Rtd": 1.0}}, {}, T0 + 6, mn="FFFF"))
    with running(agent):
        wait_for(lambda: _accepts(port), what="the HJ 212 receiver listening")
        frames = [hj212.build(rt), hj212.build(hour), *[hj212.build(p) for p in split], bad_crc, wrong_pw, stranger]
        answers = asyncio.run(_exchange(port, frames, 3 + len(split) + 2))
        wait_for(lambda: store.count_readings() >= 5, what="the records stored")
    ing.stop()
    by_qn = {(a.qn, a.cn): a for a in answers}
    # data uploads with Flag=5 are acknowledged with 9014 and their own QN; each part of a split packet too
    for p in (rt, hour, *split):
        assert (p.qn, "9014") in by_qn, p.qn
    assert by_qn[(hj212.make_qn(T0 + 4), "9011")].cp == "QnRtn=9"  # bad CRC: asked again
    assert by_qn[(hj212.make_qn(T0 + 5), "9011")].cp == "QnRtn=3"  # wrong PW
    assert by_qn[(hj212.make_qn(T0 + 6), "9011")].cp == "QnRtn=4"  # unknown MN
    # every refused packet is a dead letter with the codec's reason
    dead = [json.loads(line) for line in (tmp_path / "buffer.db.hj212-dead-letters.jsonl").read_text().splitlines()]
    assert [d["field"] for d in dead] == ["CRC", "PW", "MN"] and "expected" in dead[0]["reason"]
    rows = {(r.point, r.ts): (r.value, r.quality) for r in _readings(store)}
    assert rows[("a21026-Rtd", T0)] == (35.2, 0) and rows[("a21026-ZsRtd", T0)] == (41.0, 0)
    assert rows[("a19001-Rtd", T0)][1] == quality.uncertain(quality.Reason.CALIBRATION)
    assert rows[("a21026-Avg-hour", T0 - 3_600_000)] == (30.1, 0)  # an hour record at the hour's start
    assert rows[("a21026-Cou-hour", T0 - 3_600_000)] == (1.25, 0)
    assert rows[("a34013-Rtd", T0 + 60_000)] == (4.1, 0)  # from the reassembled split packet
    metrics = {p.point: p.metric for p in store.points("demo")}
    assert metrics["a21026-ZsAvg-hour"] == "cems.so2.hour.ref_avg" and metrics["a21026-Rtd"] == "cems.so2"
    store.close()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _readings(store: object) -> list[object]:
    from sqlalchemy import select

    from ingest.store import schema as s

    q = (select(s.points.c.name.label("point"), s.readings.c.ts, s.readings.c.value, s.readings.c.quality)
         .join(s.points, s.points.c.id == s.readings.c.point_id))
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        return list(conn.execute(q))


def test_logger_to_gateway_to_platform_every_record_once_across_dropped_links(mosquitto: Mosquitto,
                                                                            tmp_path: Path) -> None:
    """The simulator's CEMS logger dials into the gateway, the gateway reports to a test platform; both
    links are dropped mid-stream and the platform withholds acks: every record the logger made reaches
    the store and, after de-duplication, the platform exactly once; the platform's history request is
    answered from the gateway's outbox."""
    from simulators.hj212_logger import DataLogger
    from simulators.hj212_platform import TestPlatform

    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    ing = Ingestor(IngestConfig(mqtt_port=mosquitto.port, db_url=store.url), store)
    ing.start()
    hj_port = _free_port()
    start, end = T0, T0 + 2 * 3_600_000

    async def main() -> tuple[DataLogger, TestPlatform, list[hj212.Record], list[tuple[str, int]], list[Forwarder]]:
        async with TestPlatform(allow={MN: PW}, ack_timeout_s=2.0) as platform:
            agent = _agent(tmp_path, mosquitto.port, hj_port, hj212_upstream=[{
                "host": "127.0.0.1", "port": platform.port, "mn": MN, "pw": PW, "st": "31", "device": "cems1",
                "timeout_s": 0.5, "retries": 2}])
            with running(agent):
                await asyncio.to_thread(wait_for, lambda: _accepts(hj_port), 10, "the HJ 212 receiver")
                logger = DataLogger("127.0.0.1", hj_port, kind="cems", mn=MN, pw=PW, seed=7, speed=2400.0,
                                    sim_start_ms=start, end_ms=end, rtd_interval_s=60, ack_timeout_s=1.0)
                async with logger:
                    await _until(lambda: len(logger.acked()) >= 40, 20, "40 records acknowledged by the gateway")
                    logger.set_fault("drop_connection")  # the logger's link breaks inside a packet
                    await _until(lambda: len(platform.keys(MN)) >= 30, 20, "30 records at the platform")
                    assert await platform.close_client(MN)  # the regulator's side drops the gateway
                    platform.set_fault("drop_acks", 3)  # and then leaves three uploads unanswered
                    await logger.wait_idle(60)
                made = set(logger.generated())
                await _until(lambda: platform.keys(MN) >= made, 60, "every record at the platform")
                hours = [k for k in sorted(made) if k[0] == "2061"]
                reply = await platform.request_history(MN, "2061", begin_ms=start, end_ms=end)
            return logger, platform, reply.records, hours, agent.forwarders["cems1"]

    logger, platform, history, hours, (fw,) = asyncio.run(main())
    made = logger.generated()
    assert len(made) == len(set(made)) and {cn for cn, _ in made} >= {"2011", "2051", "2061"}
    # the faults happened: the logger's link broke and came back, the upstream link too, acks were withheld
    assert logger.counters.faults.get("drop_connection") == 1 and logger.counters.connections >= 2
    assert fw.reconnects >= 1 and fw.resent >= 1 and platform.counters.acks_dropped == 3
    # the platform: every record, once after de-duplication, with the values the logger measured
    assert platform.keys(MN) == set(made)
    dedup = platform.dedup()
    for cn, ts in made:
        assert dedup[(MN, cn, ts)].values == logger.record(cn, ts).values, (cn, ts)
    assert len(platform.received) > len(made)  # re-sends happened and were absorbed
    # history: the hour records, answered from the gateway's outbox
    assert sorted((r.cn, r.data_time_ms) for r in history) == hours
    # the store: every minute record on its point at its minute, as measured
    wait_for(lambda: _count(store, "a21026-Avg-minute") == sum(cn == "2051" for cn, _ in made), 30,
             "every minute record stored")
    ing.stop()
    stored = {(r.point, r.ts): r.value for r in _readings(store)}
    for cn, ts in made:
        rec = logger.record(cn, ts)
        if cn == "2051":
            assert stored[("a21026-Avg-minute", ts)] == rec.values["a21026"]["Avg"]
        if cn == "2011":
            assert stored[("a21026-Rtd", ts)] == rec.values["a21026"]["Rtd"]
    store.close()


async def _until(cond: Callable[[], bool], within_s: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _count(store: object, point: str) -> int:
    return sum(1 for r in _readings(store) if r.point == point)  # type: ignore[attr-defined]


def test_a_polled_outlet_gets_the_records_its_data_logger_would_send(tmp_path: Path) -> None:
    """A Modbus CEMS polled every 5 s: the gateway makes each minute's record as it ends and rolls the
    hour up from the minute records on its disk, equal to what parkmon/common/emissions.py makes of the
    whole two hours at once."""
    from edge_agent.hj212.forwarder import Upstream
    from edge_agent.hj212.from_samples import PeriodRecords, codes_of
    from parkmon.common import emissions

    cfg = parse_config({"gateway": {"park": "demo", "enterprise": "e01", "id": "gw"},
                        "devices": [{"id": "cems1", "port": 1502, "profile": "sim_cems"}]})
    (dev,) = cfg.devices
    fw = Forwarder(Upstream("127.0.0.1", 1, MN, PW, "31"), tmp_path / "up.db")
    periods = PeriodRecords(dev, fw)
    codes = codes_of(dev)
    assert set(codes.values()) >= {"a21026", "a19001", "a00000"}
    by_code: dict[str, list[tuple[int, float | None, int]]] = {}
    bad = quality.bad(quality.Reason.COMM_FAILURE)
    for k in range(2 * 720):  # two hours, a poll every 5 s; minute 61 has its SO2 analyser down
        ts = T0 + k * 5000
        samples = []
        for name, code in codes.items():
            v = {"a21026": 30 + (k % 17), "a19001": 8.5 + (k % 5) * 0.1, "a00000": 60.0}.get(code, 50.0)
            q = bad if code == "a21026" and 61 * 12 <= k < 62 * 12 else 0
            samples.append((f"cems1.{name}", ts, None if q else float(v), q))
            by_code.setdefault(code, []).append((ts, None if q else float(v), q))
        periods.add(samples, ts + 1)
    periods.add([], T0 + 2 * 3_600_000 + 1)
    minutes = fw.outbox.history("2051", T0, T0 + 2 * 3_600_000)
    hours = fw.outbox.history("2061", T0, T0 + 2 * 3_600_000)
    assert len(minutes) == 120 and len(hours) == 2
    whole = emissions.records(by_code, "gas", T0 + 2 * 3_600_000, mn=MN)
    want = {(r.cn, r.data_time_ms): r for r in whole}
    for cn, cps in (("2051", minutes), ("2061", hours)):
        for cp in cps:
            got = hj212.record(hj212.Packet("31", cn, PW, MN, cp))
            ref = want[(cn, got.data_time_ms)]
            assert got.flags == ref.flags
            for code, fields in ref.values.items():
                assert got.values.get(code, {}) == pytest.approx(fields, rel=1e-5), (cn, code)
    m61 = hj212.record(hj212.Packet("31", "2051", PW, MN, minutes[61]))
    assert m61.flags["a21026"] != "N"  # the minute the analyser was down says so
    fw.outbox.close()
