"""MQTT -> store. A message is acknowledged to the broker only after its rows are committed.

paho's network thread hands messages to a bounded queue; one writer thread gathers up to
``max_batch_messages`` of them, decodes, writes them in one transaction and then acks each.
Back-pressure: when the queue is full (the database is slow or down) the network thread waits
before taking the next message, so ingest stops reading from the broker and the backlog stays in
the broker's persistent session (and the gateways' disk buffers), not in our memory. The broker's
in-flight window does not do this for us: mosquitto 2.0.11 honours ``max_inflight_messages`` only
until the first PUBACK, then sends its whole queue (measured; docs/decisions/0004). A wait longer
than the keep-alive lets the broker drop the connection; unacked messages are then redelivered
and written again idempotently. A message that breaks the contract goes to the dead letters with the reason
and is acked: one bad payload never blocks the stream.

End-to-end acknowledgement (docs/decisions/0010-end-to-end-ack.md): after each commit, and before the broker
is acked, each gateway whose batches the commit held gets their seqs on its ``…/ack`` topic (QoS 0). The
gateway keeps a batch on its disk until then, so a broker that loses what it had acknowledged costs a re-send,
not data. A repeat is acked again (its rows are already there: the write is idempotent). Several workers on a
shared subscription each ack what they committed. A lost broker is retried every second at most, and the
outage logged twice: when it starts and when it ends, with how long and how many attempts. A database that
failed a write is probed every second at most; its messages are held meanwhile, neither acked nor dead-lettered
(tests/test_end_to_end_ack_pg.py stops it and kills it under load).
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest.mqtt.config import IngestConfig
from ingest.store import Store, StoreError
from ingest.store.base import IncomingBatch
from ingest.store.records import logistics
from ingest.store.records.base import RecordError
from parkmon.common import wire
from parkmon.common.clock import now_ms
from parkmon.common.received import Received

log = logging.getLogger(__name__)


RECONNECT_S = (0.5, 1.0)  # first and longest wait between attempts: back within 2 s of a restarted broker
# first and longest wait between probes of a database that failed a write: a restarted server is found
# within a second (a back-off to 5 s left a server that came back idle for up to 5 s, and slept through one
# that was up only between two crashes); a probe is one connection attempt
DB_RETRY_S = (0.2, 1.0)


@dataclass
class IngestStats:
    messages: int = 0
    acks_sent: int = 0  # ack messages published to gateways (one per gateway per commit)
    samples: int = 0
    inserted: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    last_commit_ms: int = 0
    db_errors: int = 0


@dataclass
class _Outage:
    """The broker gone (or not reached yet): logged when it starts and when it ends, not at each attempt."""

    since: float
    attempts: int = 0
    unacked: int = 0  # messages queued, not committed, when it started: the broker delivers them again
    refused: str = ""  # the last refusal (CONNACK), logged once per reason


class Ingestor:
    def __init__(self, config: IngestConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.stats = IngestStats()
        n_writers = config.writers or (2 if config.db_url.startswith("postgresql") else 1)
        # room for every writer's next group: a writer finishing a commit finds one ready
        self._queue: queue.Queue[Received] = queue.Queue(maxsize=(n_writers + 1) * config.max_batch_messages)
        self._stop = threading.Event()
        self._generation = 0  # bumped per connection: never ack a message of an older one
        self._db_down = False
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            clean_session=False,  # persistent session: the broker keeps our backlog while we are away
            manual_ack=True,
        )
        if config.mqtt_username:
            self._client.username_pw_set(config.mqtt_username, config.mqtt_password)
        if config.mqtt_tls_ca:
            self._client.tls_set(ca_certs=config.mqtt_tls_ca, certfile=config.mqtt_tls_cert,
                                 keyfile=config.mqtt_tls_key, cert_reqs=ssl.CERT_REQUIRED)
        # the broker is usually on this machine or near it: trying every second costs nothing, and a
        # restarted broker (a few hundred ms) is not left waiting for a long back-off (issue 21)
        self._client.reconnect_delay_set(min_delay=RECONNECT_S[0], max_delay=RECONNECT_S[1])  # type: ignore[arg-type]
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._sub_mid = -1
        self._outage: _Outage | None = _Outage(time.monotonic())  # not connected yet
        self.send_acks = True  # end-to-end acks to the gateways (bench/edge.py turns them off to compare)
        # several writers overlap one's Python work with another's database round trip; each holds
        # its own transaction and acks its own messages (QoS 1 acks may come in any order)
        self._writers = [threading.Thread(target=self._write_loop, name=f"ingest-writer-{i}", daemon=True)
                         for i in range(n_writers)]
        self._state_lock = threading.Lock()  # the counters and the database outage flag (writers share both)
        self.connected = threading.Event()
        # called after each commit with the batches and the commit time (ms): delay figures, and later
        # the alert engine, hang here without touching the write path
        self.commit_listeners: list[Callable[[list[IncomingBatch], int], None]] = []

    @property
    def data_filter(self) -> str:
        base = f"{wire.TOPIC_ROOT}/+/+/+/data"
        return f"$share/{self.config.shared_group}/{base}" if self.config.shared_group else base

    def start(self) -> None:
        self.store.create_schema()
        self._client.connect_async(self.config.mqtt_host, self.config.mqtt_port, keepalive=self.config.keepalive_s)
        self._client.loop_start()
        for w in self._writers:
            w.start()

    def stop(self) -> None:
        self._stop.set()
        for w in self._writers:
            w.join(10)
        self._client.disconnect()
        self._client.loop_stop()

    # ---- paho thread ---------------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, rc: Any, _p: Any = None) -> None:
        out = self._outage
        if rc.is_failure:
            if out is None:
                out = self._outage = _Outage(time.monotonic())
            out.attempts += 1
            if str(rc) != out.refused:  # once per reason, not at every attempt
                out.refused = str(rc)
                log.warning("broker %s:%s refused ingest: %s; trying again every %g s", self.config.mqtt_host,
                            self.config.mqtt_port, rc, RECONNECT_S[1])
            return
        self._generation += 1
        _rc, mid = client.subscribe([
            (self.data_filter, 1), (f"{wire.TOPIC_ROOT}/+/+/+/meta", 1),
            (f"{wire.TOPIC_ROOT}/+/+/+/status", 1), (f"{wire.TOPIC_ROOT}/+/+/+/health", 1),
            (f"{wire.TOPIC_ROOT}/+/+/+/gate", 1)])
        self._sub_mid = -1 if mid is None else mid
        self._outage = None
        if out is None or (not out.attempts and not out.unacked and self._generation == 1):
            log.info("ingest connected to %s:%s (session present: %s)", self.config.mqtt_host,
                     self.config.mqtt_port, flags.session_present)
        else:
            log.warning("ingest connected to %s:%s %safter %.1f s and %d attempts (session present: %s); "
                        "the %d messages it had queued uncommitted are delivered again",
                        self.config.mqtt_host, self.config.mqtt_port, "again " if self._generation > 1 else "",
                        time.monotonic() - out.since, out.attempts + 1, flags.session_present, out.unacked)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, mid: int, _rc: Any, _p: Any = None) -> None:
        # "connected" means the broker has our subscriptions: from now on nothing passes us by
        if mid == self._sub_mid:
            self.connected.set()

    def _on_connect_fail(self, _c: mqtt.Client, _u: Any) -> None:
        if self._outage is None:
            self._outage = _Outage(time.monotonic())
        self._outage.attempts += 1
        if self._outage.attempts == 1 and self._generation == 0:
            log.warning("ingest cannot reach the broker %s:%s; trying every %g s", self.config.mqtt_host,
                        self.config.mqtt_port, RECONNECT_S[1])

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        self.connected.clear()
        if self._stop.is_set() or self._outage is not None:  # a refused attempt ends with a disconnect too
            return
        self._outage = _Outage(time.monotonic(), unacked=self._queue.qsize())
        log.warning("ingest lost the broker %s:%s (%s); reconnecting every %g s at most; %d queued messages, not "
                    "committed yet, will be delivered again", self.config.mqtt_host, self.config.mqtt_port, rc,
                    RECONNECT_S[1], self._outage.unacked)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        m = Received(msg.topic, bytes(msg.payload), msg.mid, msg.qos, self._generation)
        while True:  # full: wait here, reading nothing more from the broker (back-pressure)
            try:
                self._queue.put(m, timeout=0.5)
                return
            except queue.Full:
                if self._stop.is_set():
                    return  # not acked: the broker redelivers it to the next run

    # ---- writer thread -------------------------------------------------------------------
    def _gather(self) -> list[Received]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        msgs = [first]
        deadline = time.monotonic() + self.config.max_wait_ms / 1000
        while len(msgs) < self.config.max_batch_messages:
            remaining = deadline - time.monotonic()
            try:
                msgs.append(self._queue.get(timeout=max(0.0, remaining)) if remaining > 0
                            else self._queue.get_nowait())
            except queue.Empty:
                break
        return msgs

    def _write_loop(self) -> None:
        while not self._stop.is_set():
            msgs = self._gather()
            if msgs:
                self._handle(msgs)

    def _handle(self, msgs: list[Received]) -> None:
        try:
            self._handle_group(msgs)
        except Exception as exc:  # not the database, not the contract: a payload our code chokes on
            if len(msgs) == 1:
                m = msgs[0]
                log.exception("cannot store message from %s; kept as a dead letter", m.topic)
                reason = f"internal error while storing ({type(exc).__name__}: {exc}); please report it"
                if self._retry(lambda: self.store.dead_letter(m.topic, m.payload, reason, m.received_ms)):
                    self._ack_gateways(self._dead_seqs([(m, reason)]))
                    self._ack([m])
                return
            for m in msgs:  # find the culprit: one message at a time
                self._handle([m])

    def _ack(self, msgs: list[Received]) -> None:
        generation = self._generation
        for m in msgs:
            if m.generation == generation and m.qos > 0:
                self._client.ack(m.mid, m.qos)
        with self._state_lock:
            self.stats.messages += len(msgs)

    def _handle_group(self, msgs: list[Received]) -> None:
        batches: list[IncomingBatch] = []
        other: list[tuple[Received, Any]] = []
        dead: list[tuple[Received, str]] = []
        for m in msgs:
            try:
                park, ent, gw, leaf = wire.parse_topic(m.topic)
                if leaf == "data":
                    b = wire.decode_batch(m.payload)
                    if b.gw != gw:
                        raise wire.ContractError(
                            f"payload gateway {b.gw!r} does not match topic gateway {gw!r}")
                    batches.append(IncomingBatch(park, ent, gw, b, m.received_ms))
                elif leaf == "meta":
                    other.append((m, (park, ent, gw, wire.decode_meta(m.payload))))
                elif leaf == "health":
                    other.append((m, (park, ent, gw, wire.decode_health(m.payload))))
                elif leaf == "gate":
                    other.append((m, (park, ent, gw, logistics.decode(m.payload))))
                elif m.payload:  # an empty retained payload clears a status: nothing to record
                    other.append((m, (park, ent, gw, wire.decode_status(m.payload))))
            except (wire.ContractError, RecordError) as exc:
                dead.append((m, str(exc)))
        if not self._retry(lambda: self._commit(batches, other, dead)):
            return  # stopping before the commit: not acked, the broker redelivers
        committed = self._dead_seqs(dead)
        for ib in batches:
            committed.setdefault((ib.park, ib.enterprise, ib.gateway), []).append(ib.batch.seq)
        self._ack_gateways(committed)  # first the gateways, then the broker: either order is safe
        self._ack(msgs)

    @staticmethod
    def _dead_seqs(dead: list[tuple[Received, str]]) -> dict[tuple[str, str, str], list[int]]:
        """Data batches kept as dead letters, by gateway: acked too (the payload is stored, and a re-send
        would only fail the same way), when the topic names a gateway and the payload has a seq."""
        out: dict[tuple[str, str, str], list[int]] = {}
        for m, _reason in dead:
            try:
                park, ent, gw, leaf = wire.parse_topic(m.topic)
            except wire.ContractError:
                continue
            seq = wire.batch_seq(m.payload) if leaf == "data" else None
            if seq is not None:
                out.setdefault((park, ent, gw), []).append(seq)
        return out

    def _ack_gateways(self, committed: dict[tuple[str, str, str], list[int]]) -> None:
        """Tell each gateway which of its batches are committed. QoS 0: an ack lost (a connection breaking,
        the broker crashing, a bridge cut) costs the gateway one re-send, which is acked again; QoS 1 would cost
        ingest 3.5 times the CPU per ack (70 µs against 20, paho's own bookkeeping) to save that."""
        if not self.send_acks:
            return
        for (park, ent, gw), seqs in committed.items():
            payload = wire.encode(wire.Ack(wire.VERSION, gw, wire.seq_ranges(seqs)))
            self._client.publish(wire.topic(park, ent, gw, "ack"), payload, qos=0)
        with self._state_lock:
            self.stats.acks_sent += len(committed)

    def _commit(self, batches: list[IncomingBatch], other: list[tuple[Received, Any]],
                dead: list[tuple[Received, str]]) -> None:
        # dead letters last: a retry after a failure re-runs the idempotent writes, not these
        dead = list(dead)  # (a retry calls again with the same list: add to a copy)
        for _m, (park, ent, gw, obj) in other:
            if isinstance(obj, logistics.Decoded):
                dead += self._gate_events(_m, park, obj)
            elif isinstance(obj, wire.Meta):
                self.store.upsert_meta(park, ent, gw, obj)
            elif isinstance(obj, wire.Health):
                self.store.set_gateway_health(park, ent, gw, obj.sent, _m.payload.decode())
            else:
                self.store.set_gateway_status(park, ent, gw, obj.state == "online", obj.sent)
        res = self.store.write_batches(batches) if batches else None
        for m, reason in dead:
            self.store.dead_letter(m.topic, m.payload, reason, m.received_ms)
        committed = now_ms()
        with self._state_lock:
            if res is not None:
                self.stats.inserted += res.inserted
                self.stats.duplicates += res.duplicates
                self.stats.samples += sum(len(b.batch.samples) for b in batches)
            self.stats.dead_letters += len(dead)
            self.stats.last_commit_ms = committed
        for listener in self.commit_listeners:  # called from any writer thread
            try:
                listener(batches, committed)
            except Exception:  # a listener's bug must not stop ingest
                log.exception("commit listener %r failed", listener)
        for m, reason in dead:
            log.warning("dead letter from %s: %s", m.topic, reason)

    def _gate_events(self, m: Received, park: str, dec: logistics.Decoded) -> list[tuple[Received, str]]:
        """Store a gate system's events; what cannot be stored becomes dead letters (returned)."""
        try:  # a database error is a StoreError: retried like a batch
            logistics.store_events(self.store, park, dec.events, m.received_ms)
        except RecordError as exc:  # e.g. a park nobody registered: retrying would not help
            return [(m, str(exc))]
        return [(m, f"event {i}: {why}") for i, why in dec.rejected]

    def _retry(self, fn: Any) -> bool:
        """Run ``fn`` until it commits (True) or ingest is stopping (False)."""
        delay = DB_RETRY_S[0]
        while True:
            try:
                fn()
            except StoreError as exc:
                with self._state_lock:  # check and set together: two writers failing at once log it once
                    self.stats.db_errors += 1
                    first, self._db_down = not self._db_down, True
                if first:
                    log.error("database write failed, holding messages (not acked) and retrying: %s", exc)
                # wait for the database before redoing the work: rebuilding a group's rows at every
                # back-off while it is down only churns memory
                while True:
                    if self._stop.wait(delay):
                        return False
                    delay = min(delay * 2, DB_RETRY_S[1])
                    try:
                        self.store.ping()
                        break
                    except StoreError:
                        continue
                continue
            with self._state_lock:
                back, self._db_down = self._db_down, False
            if back:
                log.warning("database is back; ingest resumed")
            return True
