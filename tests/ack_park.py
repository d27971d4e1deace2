"""A park for the end-to-end acknowledgement tests (issue 21, docs/decisions/0010): mosquitto with the
persistence production runs (the global lines of deploy/server/mosquitto.conf, read at each start), ingest
as ``parkmon ingest run`` processes into PostgreSQL with fsync on, and real gateways: ``parkmon edge run``
processes, each polling its own Modbus meter that numbers its answers (tests/edge_faults.py).

What every test counts, per gateway: each read the meter answered (its number is the value of point
``m.n``) against the rows stored: every one stored, once, with the other two points of its poll; and every
seq the gateway handed out is either stored or still on its disk, none dropped.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.buffer import DiskBuffer
from ingest.mqtt.broker import Mosquitto
from parkmon.common import quality
from parkmon.common.netutil import free_port
from tests.edge_faults import AgentProcess, CountingMeter, agent_config
from tests.mqtt_util import wait_for
from tests.test_ingest_recovery import Ingest

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_CONF = ROOT / "deploy" / "server" / "mosquitto.conf"
PARK = "demo"
# a test's faults last seconds: a missing batch is sent again 2 s after later ones were confirmed
ACK_TIMEOUT_S = 2.0
GATEWAYS = 3
# durable as in production: a commit ingest has acknowledged survives a crash of the server
DURABLE_PG = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


def production_settings() -> str:
    """The global lines of production's mosquitto.conf (persistence, autosave, queues), without its paths
    and listeners: this broker keeps what production keeps, and loses what production loses."""
    out = []
    for line in PRODUCTION_CONF.read_text(encoding="utf-8").splitlines():
        word = line.split(" ", 1)[0]
        if word == "listener":
            break
        if line.strip() and not line.startswith("#") and word not in ("persistence_location", "per_listener_settings"):
            out.append(line.strip())
    assert "persistence true" in out, f"{PRODUCTION_CONF} no longer turns persistence on: {out}"
    return "\n".join(out) + "\n"


class ProductionMosquitto(Mosquitto):
    def write_conf(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(
            f"user {pwd.getpwuid(os.geteuid()).pw_name}\n" + self.pre_conf + production_settings()
            + f"persistence_location {self.workdir}/\n"
            f"listener {self.port} {self.host}\nallow_anonymous true\n"
            f"log_dest file {self.workdir}/mosquitto.log\n" + self.extra_conf, encoding="utf-8")

    def sigkill(self) -> None:
        """A crash: no persistence file written on the way out."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None


class Gateway:
    """One gateway of the park: its meter (served from this process) and its agent (a process)."""

    def __init__(self, stack: ExitStack, workdir: Path, index: int, mqtt_port: int, poll_s: float = 0.2) -> None:
        self.enterprise, self.id = f"e{index:02d}", f"gw-{index:02d}"
        self.meter = stack.enter_context(CountingMeter().serving())
        self.dir = workdir / self.id
        self.dir.mkdir(parents=True)
        # a generous device timeout: a read the meter answered must reach the agent, however loaded CI is
        cfg = agent_config(self.dir / "gw.yaml", self.meter.port, mqtt_port, poll_s,
                           gateway=(PARK, self.enterprise, self.id), timeout_s=5.0,
                           mqtt={"ack_timeout_s": ACK_TIMEOUT_S})
        self.agent = AgentProcess(cfg)
        stack.callback(self.stop)
        self.reads = -1  # final number of answered reads, once frozen

    def stop(self) -> int:
        if self.agent.proc.poll() is None and not self.agent.stopping:
            self.agent.proc.send_signal(signal.SIGTERM)
            self.agent.stopping = True
        return self.agent.wait(60)

    def on_disk(self) -> set[int]:
        """The seqs still in the stopped agent's buffer, and the highest it ever handed out."""
        buf = DiskBuffer(self.dir / "buffer.db", self.id, 1 << 30)
        try:
            seqs = {seq for seq, _c, _p in buf.pending(0, 1 << 30)}
            self.last_seq, self.dropped = buf.last_seq(), buf.dropped_batches()
        finally:
            buf.close()
        return seqs


class HealthTap:
    """The last health report of each gateway; subscribes again on every connection (brokers get killed)."""

    def __init__(self, port: int) -> None:
        self.last: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="ack-health-tap")
        self.client.on_connect = lambda c, _u, _f, _rc, _p: c.subscribe(f"parkmon/v1/{PARK}/+/+/health", 0)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.last[msg.topic.split("/")[4]] = json.loads(msg.payload)

    def of(self, gw: str) -> dict[str, Any]:
        with self._lock:
            return dict(self.last.get(gw, {}))

    def close(self) -> None:
        self.client.loop_stop()
        with contextlib.suppress(Exception):
            self.client.disconnect()


def _dsn(db: str) -> str:
    return db.replace("postgresql+psycopg", "postgresql")


def stored_reads(db: str) -> dict[str, Counter[int]]:
    """Per enterprise: how many times each read number (point m.n, good quality) is stored."""
    out: dict[str, Counter[int]] = {}
    with contextlib.suppress(psycopg.errors.UndefinedTable), psycopg.connect(_dsn(db)) as conn:
        rows = conn.execute("SELECT p.key, r.value, r.quality FROM readings r JOIN points p ON p.id = r.point_id "
                            "WHERE p.key LIKE %s AND r.value IS NOT NULL", (f"{PARK}.%.m.n",)).fetchall()
        for key, value, q in rows:
            if quality.is_good(q):
                out.setdefault(key.split(".")[1], Counter())[int(value)] += 1
    return out


def check_every_read_stored_once(db: str, gateways: list[Gateway], timeout: float = 120) -> dict[str, Any]:
    """Freeze the meters (the count of answered reads is final), wait until each is stored, stop the
    gateways, then check per gateway: every read stored once with its poll's other points; every seq either
    stored or still on the gateway's disk; nothing dropped. Returns figures to print."""
    for g in gateways:
        g.reads = g.meter.freeze()

    def missing() -> dict[str, int]:
        got = stored_reads(db)
        return {g.id: len(set(range(1, g.reads + 1)) - set(got.get(g.enterprise, {}))) for g in gateways}

    try:
        wait_for(lambda: not any(missing().values()), timeout, "every answered read stored")
    except AssertionError:
        raise AssertionError(f"reads never stored, per gateway: {missing()}") from None
    for g in gateways:
        assert g.stop() == 0, g.agent.log
        assert "Traceback" not in g.agent.log, g.agent.log
    got = stored_reads(db)
    with psycopg.connect(_dsn(db)) as conn:
        per_ts: dict[str, int] = dict(conn.execute(  # each poll's three points stored together, at one time
            "SELECT split_part(p.key, '.', 2), count(*) FROM readings r JOIN points p ON p.id = r.point_id "
            "WHERE r.value IS NOT NULL GROUP BY 1").fetchall())
        seqs: dict[str, set[int]] = {}
        for gw, seq in conn.execute("SELECT g.key, gb.seq FROM gateway_batches gb "
                                    "JOIN gateways g ON g.id = gb.gateway_id").fetchall():
            seqs.setdefault(gw, set()).add(int(seq))
    figures: dict[str, Any] = {}
    for g in gateways:
        counts = got[g.enterprise]
        assert set(counts) == set(range(1, g.reads + 1)), f"{g.id}: stored reads other than 1..{g.reads}"
        doubled = {n: c for n, c in counts.items() if c != 1}
        assert not doubled, f"{g.id}: reads stored more than once: {doubled}"
        assert per_ts[g.enterprise] == 3 * g.reads, (g.id, per_ts[g.enterprise], g.reads)
        disk = g.on_disk()
        assert g.dropped == 0, f"{g.id} dropped {g.dropped} batches"
        assert seqs[g.id] | disk == set(range(1, g.last_seq + 1)), f"{g.id}: a seq neither stored nor on disk"
        figures[g.id] = {"reads": g.reads, "batches": g.last_seq, "left_on_disk": len(disk)}
    return figures


def start_broker(stack: ExitStack, workdir: Path, extra_conf: str = "") -> ProductionMosquitto:
    broker = ProductionMosquitto(workdir, free_port(), extra_conf=extra_conf)
    broker.start()
    stack.callback(broker.stop)
    return broker


def start_ingest(stack: ExitStack, db: str, port: int, workdir: Path, **kw: str) -> Ingest:
    ingest = Ingest(db, port, workdir, **kw)
    ingest.start()
    stack.callback(ingest.stop)
    return ingest


def start_park(stack: ExitStack, db: str, workdir: Path,
               broker: ProductionMosquitto) -> tuple[HealthTap, list[Gateway]]:
    """The health tap and the gateways on ``broker``, started, with reads of every gateway stored."""
    tap = HealthTap(broker.port)
    stack.callback(tap.close)
    gateways = [Gateway(stack, workdir, i, broker.port) for i in range(1, GATEWAYS + 1)]
    flowing(db, gateways)
    return tap, gateways


def flowing(db: str, gateways: list[Gateway], more_than: int = 5) -> None:
    """Wait until each gateway has more than ``more_than`` reads stored."""
    wait_for(lambda: all(len(stored_reads(db).get(g.enterprise, ())) > more_than for g in gateways), 60,
             "reads of every gateway stored")


def caught_up(db: str, gateways: list[Gateway], bound_s: float) -> float:
    """Seconds until every read the meters had answered when this was called is stored (a bounded poll:
    the figure is printed, not asserted; past ``bound_s`` the test fails with what is missing)."""
    t0 = time.monotonic()
    answered = {g.enterprise: g.meter.reads for g in gateways}

    def missing() -> dict[str, int]:
        got = stored_reads(db)
        return {e: len(set(range(1, n + 1)) - set(got.get(e, {}))) for e, n in answered.items()}

    while any((left := missing()).values()):
        if time.monotonic() - t0 > bound_s:
            raise AssertionError(f"not caught up {bound_s} s after the fault ended; reads missing: {left}")
        time.sleep(0.2)
    return round(time.monotonic() - t0, 1)


def report(name: str, figures: dict[str, dict[str, int]], tap: HealthTap) -> dict[str, dict[str, int]]:
    for gw, f in figures.items():
        h = tap.of(gw)
        f.update({k: h.get(k, -1) for k in ("resent", "confirmed", "unconfirmed_deleted")})
    print(name, figures)
    return figures
