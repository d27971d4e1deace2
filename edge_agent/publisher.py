"""MQTT side of the gateway: birth/death, the retained point catalogue, and the buffer pump.

The pump publishes buffered batches in seq order with QoS 1 as soon as the agent says a write
landed (``notify``), and deletes a batch from the disk buffer only once the platform has confirmed it
committed: ingest's ack on ``parkmon/v1/<park>/<enterprise>/<gateway>/ack`` (edge_agent/acks.py says when
an unconfirmed batch is sent again, and when an older platform that never confirms makes it fall back to
the broker's PUBACK). Confirmed seqs are deleted together, one transaction per turn of the pump. At most
``window`` batches wait for a PUBACK and ``mqtt.max_unacked`` for a confirmation, so a long outage never
grows memory: the backlog stays on disk. While the connection is down paho keeps the (few) un-PUBACKed
messages and re-sends them on reconnect; the pump re-sends the other unconfirmed ones, in seq order; after
a restart it starts again from the oldest batch still on disk. A batch may so arrive twice; the platform
de-duplicates on seq and acks it again.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import ssl
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.acks import AckTracker
from edge_agent.buffer import DELIVERIES, DiskBuffer
from edge_agent.config import AgentConfig
from parkmon.common import wire
from parkmon.common.clock import now_ms

log = logging.getLogger(__name__)

DELETE_RETRY_S = 1.0


class Publisher:
    def __init__(self, cfg: AgentConfig, buffer: DiskBuffer, meta: wire.Meta, window: int | None = None) -> None:
        self.cfg = cfg
        self.buffer = buffer
        self.meta = meta
        self.window = window or cfg.mqtt.max_inflight
        gw = cfg.gateway
        self.topic_data = wire.topic(gw.park, gw.enterprise, gw.id, "data")
        self.topic_status = wire.topic(gw.park, gw.enterprise, gw.id, "status")
        self.topic_meta = wire.topic(gw.park, gw.enterprise, gw.id, "meta")
        self.topic_health = wire.topic(gw.park, gw.enterprise, gw.id, "health")
        self.topic_ack = wire.topic(gw.park, gw.enterprise, gw.id, "ack")
        m = cfg.mqtt
        self.acks = AckTracker(m.end_to_end_ack, m.ack_timeout_s, m.ack_fallback_s, m.max_unacked,
                               confirmed_before=buffer.counter(DELIVERIES["confirmed"][0]) > 0)
        self._cond = threading.Condition()
        self._connected = False
        self._conn = 0  # connections so far: a batch sent on an earlier one is re-sent (acks.py)
        self._stopping = False
        self._news = True  # the buffer may hold batches not sent yet (at start: a previous run's backlog)
        self._last_sent = 0
        # paho calls on_publish holding its own message lock, so the mid map has a lock of its
        # own that is never held around a paho call (holding _cond there would deadlock)
        self._map_lock = threading.Lock()
        self._outstanding: dict[int, int] = {}  # mid -> seq
        self._early: set[int] = set()  # acks that arrived before publish() returned the mid
        self._delete_failing = False
        self._delete_at = 0.0
        self._window_full = False
        self.published = 0
        self.acked = 0
        self._client = self._make_client()
        self._thread = threading.Thread(target=self._pump, name="parkmon-pump", daemon=True)

    def _status(self, state: str) -> bytes:
        return wire.encode(wire.Status(wire.VERSION, self.cfg.gateway.id, state,  # type: ignore[arg-type]
                                       now_ms(), "parkmon-edge"))

    def _make_client(self) -> mqtt.Client:
        m, g = self.cfg.mqtt, self.cfg.gateway
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            # the broker of `parkmon ingest mqtt-auth` uses the login as client id (use_username_as_clientid):
            # say the same, so its logs and ours agree; an anonymous broker (the demo's) gets the old id
            client_id=m.username or f"parkmon-{g.park}-{g.enterprise}-{g.id}",
            clean_session=True,
        )
        if m.username:
            client.username_pw_set(m.username, m.password)
        if m.tls:
            client.tls_set(ca_certs=m.tls.ca_file, certfile=m.tls.cert_file, keyfile=m.tls.key_file,
                           cert_reqs=ssl.CERT_REQUIRED)
        client.max_inflight_messages_set(self.window)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.will_set(self.topic_status, self._status("offline"), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        m = self.cfg.mqtt
        self._client.connect_async(m.host, m.port, keepalive=m.keepalive_s)
        self._client.loop_start()
        self._thread.start()

    def stop(self, drain_s: float = 5.0) -> None:
        """Say goodbye: send what is buffered while the broker is there (for at most ``drain_s``),
        publish the death message, disconnect. What is left stays on disk for the next start. The broker
        may vanish at any point of this (stopped with the gateway): nothing here may raise for that."""
        deadline = time.monotonic() + drain_s
        with self._cond:
            while self._connected and time.monotonic() < deadline and self._unsent():
                self._cond.wait(0.05)
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=2.0)
        if self._connected:
            info = self._client.publish(self.topic_status, self._status("offline"), qos=1, retain=True)
            # the connection can drop between the check and the publish: then there is no goodbye to
            # wait for (paho raises for it), and the broker sends the will instead
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(timeout=1.0)
        self._client.disconnect()
        self._client.loop_stop()
        self._forget_delivered(now=True)  # acks that came in after the pump stopped

    def _unsent(self) -> bool:
        """Batches out and not confirmed, or on disk and not sent yet."""
        if self.outstanding or self.acks.unacked:
            return True
        try:
            return bool(self.buffer.pending(self._last_sent, 1))
        except sqlite3.Error:
            return False  # a disk that cannot be read: nothing to drain from it

    def publish_health(self, health: wire.Health) -> None:
        """Best effort: health is a snapshot, the next one replaces it; nothing to buffer."""
        if self._connected:
            self._client.publish(self.topic_health, wire.encode(health), qos=0, retain=True)

    def notify(self) -> None:
        """A write landed in the buffer: send it."""
        with self._cond:
            self._news = True
            self._cond.notify_all()

    @property
    def outstanding(self) -> int:
        with self._map_lock:
            return len(self._outstanding)

    @property
    def connected(self) -> bool:
        return self._connected

    # paho callbacks run on paho's network thread
    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        if rc.is_failure:
            log.warning("broker %s:%s refused the connection: %s", self.cfg.mqtt.host, self.cfg.mqtt.port, rc)
            return
        log.info("connected to broker %s:%s", self.cfg.mqtt.host, self.cfg.mqtt.port)
        if self.acks.setting != "off":  # a clean session: subscribe on every connection
            client.subscribe(self.topic_ack, 1)
        client.publish(self.topic_meta, wire.encode(self.meta), qos=1, retain=True)
        client.publish(self.topic_status, self._status("online"), qos=1, retain=True)
        with self._cond:
            self._connected = True
            self._conn += 1
            self._news = True
            self._cond.notify_all()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        if not self._stopping:
            log.warning("lost the broker (%s); buffering to disk and reconnecting", rc)
        with self._cond:
            self._connected = False
            self._cond.notify_all()

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, _rc: Any = None, _p: Any = None) -> None:
        with self._map_lock:
            seq = self._outstanding.pop(mid, None)
            if seq is None:
                self._early.add(mid)
        if seq is not None:
            self._acked(seq)

    def _acked(self, seq: int) -> None:
        """The broker's PUBACK: deleted only in fallback / off (acks.py); frees room in paho's window."""
        self.acks.puback(seq)
        self.acked += 1
        with self._cond:
            if self._window_full:  # room in the window: more may wait on disk
                self._news = True
            self._cond.notify_all()  # the pump deletes it

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        """The platform's ack: these batches are committed."""
        try:
            ack = wire.decode_ack(bytes(msg.payload), self.cfg.gateway.id)
        except wire.ContractError as exc:  # only ingest may write here (ACL); say it, once in a while
            self.acks.refused += 1
            if self.acks.refused in (1, 10, 100) or self.acks.refused % 1000 == 0:
                log.warning("ignored an ack on %s (%d so far): %s", msg.topic, self.acks.refused, exc)
            return
        self.acks.confirm(ack)
        with self._cond:
            self._news = True  # room under max_unacked: more may go
            self._cond.notify_all()

    def _forget_delivered(self, now: bool = False) -> None:
        """Delete delivered batches from the buffer: all those confirmed (or PUBACKed, in fallback / off)
        since the last turn of the pump, in one transaction each. If the disk refuses, they stay (sent again
        after a restart, which the platform absorbs) and it is tried again DELETE_RETRY_S later."""
        if not now and time.monotonic() < self._delete_at:
            return
        confirmed, pubacked = self.acks.take()
        if not confirmed and not pubacked:
            return
        try:
            for seqs, how in ((confirmed, "confirmed"), (pubacked, "puback")):
                self.buffer.delete(seqs, how)
                seqs.clear()  # done: not given back if the next one fails
        except sqlite3.Error as exc:
            self.acks.give_back(confirmed, pubacked)
            self._delete_at = time.monotonic() + DELETE_RETRY_S
            if not self._delete_failing:
                log.warning("cannot delete delivered batches from the disk buffer (%s); they stay on disk "
                            "until it works", exc)
            self._delete_failing = True
            return
        if self._delete_failing:
            log.info("deleting delivered batches from the disk buffer works again")
            self._delete_failing = False

    def _pump(self) -> None:
        try:
            self._pump_loop()
        finally:
            self._forget_delivered(now=True)

    def _room(self) -> int:
        room = self.window - self.outstanding
        unacked_room = self.acks.room()
        return room if unacked_room is None else min(room, unacked_room)

    def _pump_loop(self) -> None:
        failing = False
        while True:
            self._forget_delivered()
            with self._cond:
                if self._stopping:
                    return
                conn = self._conn if self._connected else 0
            if conn and self.outstanding < self.window:
                self._resend(conn)
            with self._cond:
                if self._stopping:
                    return
                room = self._room()
                self._window_full = room <= 0
                if not (self._connected and not self._window_full and self._news):
                    self._cond.wait(0.5)
                    continue
                self._news = False  # cleared before reading: a write landing meanwhile sets it again
                after, conn = self._last_sent, self._conn
            try:
                batch = self.buffer.pending(after, room)
            except sqlite3.Error as exc:  # the pump must outlive a disk that fails for a while
                if not failing:
                    log.warning("cannot read the disk buffer (%s); trying again every second", exc)
                failing, self._news = True, True
                time.sleep(1.0)
                continue
            if failing:
                log.info("reading the disk buffer works again")
                failing = False
            if len(batch) == room:
                self._news = True  # the window is full; there may be more behind it
            for seq, created_ms, payload in batch:
                if not self._connected or self._stopping:
                    break
                self._send(seq, created_ms, payload, conn)
                self._last_sent = seq

    def _resend(self, conn: int) -> None:
        """Send again, in seq order, what the platform has not confirmed and is due (acks.py)."""
        with self._map_lock:
            held = set(self._outstanding.values())
        due = self.acks.due(conn, held)
        if not due:
            return
        due = due[: max(1, self.window - self.outstanding)]  # the rest on the next turns
        try:
            rows = self.buffer.get(due)
        except sqlite3.Error:
            return  # the pump's own read says so, and this is tried again next turn
        self.acks.forget(sorted(set(due) - {seq for seq, _c, _p in rows}))  # dropped for space meanwhile
        for seq, created_ms, payload in rows:
            if not self._connected or self._stopping:
                return
            self._send(seq, created_ms, payload, conn)

    def _send(self, seq: int, created_ms: int, payload: bytes, conn: int) -> None:
        self.acks.sent(seq, created_ms, conn)  # before publish: its PUBACK may come before publish returns
        info = self._client.publish(self.topic_data, payload, qos=1)
        with self._map_lock:
            early = info.mid in self._early
            if early:
                self._early.discard(info.mid)
            else:
                self._outstanding[info.mid] = seq
        self.published += 1
        if early:
            self._acked(seq)
