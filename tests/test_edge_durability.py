"""The gateway's promises when things break (issue 21): every sample polled is delivered, or its loss is
counted where a user looks (health, log, the completeness report), and the agent never gives up by itself.

Real components throughout: ``parkmon edge run`` as a process, a real mosquitto, a real Modbus server
that numbers its answers (tests/edge_faults.py), the real ingest for the completeness report.

The disk fault: RLIMIT_FSIZE lowered to 0 on the running agent with prlimit(2), so every write it makes
to a regular file fails (EFBIG, which SQLite reports as "disk I/O error"), as on a failing disk; raising
it again is the disk coming back. It needs no root and touches nothing but the agent. In-process,
SQLite's max_page_count gives the other face of it, a full file ("database or disk is full").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edge_agent.buffer import DiskBuffer
from edge_agent.drivers.base import Sample
from edge_agent.outbox import Outbox
from ingest.mqtt.broker import Mosquitto, start_mosquitto
from tests.edge_faults import POINTS, AgentProcess, BrokerTap, CountingMeter, agent_config
from tests.mqtt_util import wait_for

needs_prlimit = pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="prlimit(2) is Linux's")


def _stop(agent: AgentProcess) -> int:
    """SIGTERM, once (a second one while it shuts down would end it the hard way), and its exit code."""
    if agent.proc.poll() is None and not agent.stopping:
        agent.proc.send_signal(signal.SIGTERM)
        agent.stopping = True
    return agent.wait(30)


def _stop_now(agent: AgentProcess) -> None:
    agent.proc.send_signal(signal.SIGTERM)
    agent.stopping = True


@needs_prlimit
def test_buffer_disk_failing_then_back_loses_nothing_but_the_counted_drops(mosquitto: Mosquitto,
                                                                          tmp_path: Path) -> None:
    # the platform side, for its completeness report (imported here: the other tests need none of it)
    from ingest.mqtt.config import IngestConfig
    from ingest.mqtt.consumer import Ingestor
    from ingest.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'platform.db'}")
    ingest = Ingestor(IngestConfig(mqtt_port=mosquitto.port, db_url=store.url), store)
    ingest.start()
    tap = BrokerTap(mosquitto.port)
    meter = CountingMeter()
    limit = 15  # samples held in memory while the disk refuses: five polls of three points
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    try:
        with meter.serving():
            cfg = agent_config(tmp_path / "gw.yaml", meter.port, mosquitto.port, 0.2, max_memory_samples=limit)
            agent = AgentProcess(cfg)
            try:
                wait_for(lambda: len(tap.values("n")) >= 5, what="the first polls delivered")
                resource.prlimit(agent.pid, resource.RLIMIT_FSIZE, (0, hard))  # the disk refuses every write
                wait_for(lambda: tap.last_health().get("buffer_state") == "write_failing", what="health: failing")
                wait_for(lambda: bool(agent.logged("memory limit")), what="memory full: the oldest dropped")
                failing = tap.last_health()
                reads_before_back = meter.reads
                resource.prlimit(agent.pid, resource.RLIMIT_FSIZE, (soft, hard))  # the disk is back
                wait_for(lambda: bool(agent.logged("work again")), timeout=30, what="writes work again")
                wait_for(lambda: max(tap.values("n")) >= reads_before_back + 5, what="polls delivered again")
                reads = meter.freeze()  # from here on the meter answers with errors: `reads` is final

                def dropped_polls() -> int:
                    return int(tap.last_health().get("dropped_by_cause", {}).get("memory_full", 0)) // len(POINTS)

                wait_for(lambda: len(tap.values("n")) + dropped_polls() == reads, timeout=30,
                         what="every good read delivered or counted as dropped")
                wait_for(lambda: tap.last_health().get("buffer_state") == "ok", what="health: ok again")
            finally:
                resource.prlimit(agent.pid, resource.RLIMIT_FSIZE, (soft, hard))
                rc = _stop(agent)
            assert rc == 0 and "Traceback" not in agent.log, agent.log

            health = tap.last_health()
            dropped = health["dropped_by_cause"]["memory_full"]
            delivered = tap.values("n")
            # nothing lost but what the gateway counted, and it did have to drop (the bound was reached)
            assert dropped > 0 and dropped % len(POINTS) == 0
            assert len(delivered) + dropped // len(POINTS) == reads
            assert delivered <= set(range(1, reads + 1))
            assert health["dropped_samples"] == dropped  # the figure a user watches counts it
            # every point of every poll that was kept arrived (per point, the same poll times)
            assert tap.stamps("a") == tap.stamps("b") == tap.stamps("n")
            # seqs: none carried two different batches; the dropped batches are gaps, and only they
            seqs = tap.by_seq()
            assert all(len(contents) == 1 for contents in seqs.values()), "a seq was reused"
            gaps = max(seqs) - len(seqs)  # a new buffer starts at seq 1
            assert gaps == health["dropped_batches"] > 0
            # the platform's completeness report counts exactly those gaps
            wait_for(lambda: sum(c.received for c in store.completeness("demo", 0, 2**62)) == len(seqs),
                     what="ingest stored every batch")
            (c,) = store.completeness("demo", 0, 2**62)
            assert c.expected - c.received == gaps
            # the log: once when it started, once when it ended, with the counts
            assert len(agent.logged("cannot write the disk buffer")) == 1
            assert len(agent.logged("memory limit")) == 1
            (back,) = agent.logged("work again")
            assert f"dropped {dropped} samples" in back
            # what health said while it lasted
            assert failing["buffer_error"] and failing["buffer_failing_since_ms"]
            assert failing["memory_samples"] <= limit and failing["memory_limit_samples"] == limit
            assert health["buffer_write_failures"] >= 1

            # the counts survive a restart
            seen = len(tap.health)
            again = AgentProcess(cfg)
            try:
                wait_for(lambda: len(tap.health) > seen + 1, what="health from the restarted agent")
            finally:
                assert _stop(again) == 0, again.log
            later = tap.health[-1]
            assert later["uptime_s"] < health["uptime_s"], "not the restarted agent's report"
            for key in ("dropped_samples", "dropped_batches", "buffer_write_failures", "dropped_by_cause"):
                assert later[key] == health[key], key
    finally:
        tap.close()
        ingest.stop()
        store.close()


def test_agent_killed_right_after_a_poll_loses_nothing_of_it(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Three times: a poll answered, SIGKILL a little after it (well before the next, 1 s later),
    start again. Every read the meter answered arrives, for every point."""
    tap = BrokerTap(mosquitto.port)
    meter = CountingMeter()
    try:
        with meter.serving():
            cfg = agent_config(tmp_path / "gw.yaml", meter.port, mosquitto.port, 1.0)
            agent = AgentProcess(cfg)
            try:
                for _ in range(3):
                    start = meter.reads
                    wait_for(lambda start=start: meter.reads > start + 1, what="a poll answered")  # type: ignore[misc]
                    time.sleep(0.3)  # right after that poll
                    os.kill(agent.pid, signal.SIGKILL)
                    agent.wait()
                    agent = AgentProcess(cfg)
                start = meter.reads
                wait_for(lambda: meter.reads > start + 1, what="polls after the last restart")
                reads = meter.freeze()
                with contextlib.suppress(AssertionError):  # the assertions below say what is missing
                    wait_for(lambda: len(tap.values("n")) >= reads, timeout=20, what="every read delivered")
            finally:
                rc = _stop(agent)
        assert rc == 0, agent.log
        missing = set(range(1, reads + 1)) - tap.values("n")
        assert not missing, f"polls lost: reads {sorted(missing)} of {reads}"
        for point in POINTS:
            assert len(tap.stamps(point)) == reads, point
        assert all(len(contents) == 1 for contents in tap.by_seq().values()), "a seq was reused"
        assert tap.last_health()["dropped_samples"] == 0
    finally:
        tap.close()


# The broker going while the agent says goodbye is a race (paho has dropped the socket, its disconnect
# callback has not run yet): one scenario stops the broker at several small offsets before the agent.
@pytest.mark.parametrize("how", ["broker killed as the agent stops", "broker stopped just before the agent",
                                 "agent stopped, then the broker", "broker gone before the agent stops"])
def test_edge_run_stopped_with_its_broker_exits_cleanly(how: str, tmp_path: Path) -> None:
    meter = CountingMeter()
    offsets = [0.0, 0.01, 0.02, 0.04, 0.08] if how == "broker stopped just before the agent" else [0.0]
    with meter.serving():
        for i, offset in enumerate(offsets):
            rc, agent = _stop_with_broker(how, offset, meter, tmp_path / str(i))
            assert rc == 0, agent.log
            assert "Traceback" not in agent.log and " ERROR " not in agent.log, agent.log


def _stop_with_broker(how: str, offset: float, meter: CountingMeter, work: Path) -> tuple[int, AgentProcess]:
    work.mkdir()
    broker = start_mosquitto(work / "mq")
    agent = AgentProcess(agent_config(work / "gw.yaml", meter.port, broker.port, 0.1))
    try:
        wait_for(lambda: bool(agent.logged("connected to broker")), what="the agent online")
        start = meter.reads
        wait_for(lambda: meter.reads >= start + 3, what="polls under way")
        assert broker.proc is not None
        if how == "broker killed as the agent stops":
            broker.proc.kill()
            _stop_now(agent)
        elif how == "broker stopped just before the agent":
            broker.proc.terminate()
            time.sleep(offset)
            _stop_now(agent)
        elif how == "agent stopped, then the broker":
            _stop_now(agent)
            broker.stop()
        else:
            broker.stop()
            wait_for(lambda: bool(agent.logged("lost the broker")), what="the agent noticed")
            _stop_now(agent)
        return _stop(agent), agent
    finally:
        _stop(agent)
        broker.stop()


@pytest.mark.parametrize("end", ["dies", "stops"])
def test_samples_held_for_a_full_disk_are_counted_when_the_agent_ends(end: str, tmp_path: Path) -> None:
    """A full buffer file (SQLite's max_page_count: it may not grow), samples held in memory, then the
    agent dies (its writer simply never runs again) or stops cleanly: either way the next start counts
    them as lost and never hands their seqs out again, so the platform sees the gap."""
    path = tmp_path / "buffer.db"
    poll: list[Sample] = [(f"m.p{i:03d}", 1_763_800_000_000, float(i), 0) for i in range(200)]  # ~8 kB: new pages

    async def run() -> int:
        buf = DiskBuffer(path, "gw", 10**9)
        box = Outbox(buf, max_samples=500, limit=10_000, written=lambda: None)
        writer = asyncio.create_task(box.run())
        box.put(poll)
        await _until(lambda: buf.depth()[0] == 1)
        with buf._lock:  # the file may not grow past what it has: a full disk, without root
            pages = buf._db.execute("PRAGMA page_count").fetchone()[0]
            buf._db.execute(f"PRAGMA max_page_count = {pages}")
        for _ in range(3):
            box.put(poll)
            await asyncio.sleep(0.05)
        await _until(lambda: box.state == "write_failing" and box.in_memory == 3 * len(poll))
        await _until(lambda: _saved(path, "memory_samples") == 3 * len(poll))  # what a restart will read
        highest = buf.last_seq()
        if end == "dies":
            writer.cancel()  # nothing of it runs again
            await asyncio.gather(writer, return_exceptions=True)
        else:
            box.close()
            await writer
        buf.close()
        return highest  # the highest seq handed out

    highest = asyncio.run(run())
    again = DiskBuffer(path, "gw", 10**9)
    try:
        assert again.losses()["unwritten_at_stop"] == 3 * len(poll)
        assert again.dropped() == 3 * len(poll) and again.dropped_batches() >= 1
        assert again.next_seq() > highest, "a seq of the lost samples was handed out again"
        assert again.depth()[1] == len(poll)  # the first poll, written before the disk filled
    finally:
        again.close()
    # counted once: a second start finds nothing more
    third = DiskBuffer(path, "gw", 10**9)
    assert third.found_unwritten == (0, 0) and third.losses()["unwritten_at_stop"] == 3 * len(poll)
    third.close()


def _saved(path: Path, name: str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        row = db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
    return int(row[0]) if row else 0


async def _until(cond: Callable[[], bool], within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)
