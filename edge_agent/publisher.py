"""MQTT side of the gateway: birth/death, the retained point catalogue, and the buffer pump.

The pump publishes buffered batches in seq order with QoS 1 as soon as the agent says a write
landed (``notify``), and deletes a batch from the disk buffer only on PUBACK (acknowledged seqs are
deleted together, one transaction per turn of the pump). At most ``window`` batches are out at once,
so a long outage never grows memory: the backlog stays on disk. While the connection is down paho
keeps the (few) unacked messages and re-sends them on reconnect; after a restart the pump starts
again from the oldest batch still on disk. Both paths can send a batch twice; the platform
de-duplicates on seq.
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

from edge_agent.buffer import DiskBuffer
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
        self._cond = threading.Condition()
        self._connected = False
        self._stopping = False
        self._news = True  # the buffer may hold batches not sent yet (at start: a previous run's backlog)
        self._last_sent = 0
        # paho calls on_publish holding its own message lock, so the mid map has a lock of its
        # own that is never held around a paho call (holding _cond there would deadlock)
        self._map_lock = threading.Lock()
        self._outstanding: dict[int, int] = {}  # mid -> seq
        self._early: set[int] = set()  # acks that arrived before publish() returned the mid
        self._delivered: list[int] = []  # acknowledged seqs the pump has yet to delete
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
        m = self.cfg.mqtt
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"parkmon-{self.cfg.gateway.park}-{self.cfg.gateway.enterprise}-{self.cfg.gateway.id}",
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
        self._forget_delivered(now=True)  # PUBACKs that came in after the pump stopped

    def _unsent(self) -> bool:
        """Batches out and not acknowledged, or on disk and not sent yet."""
        if self.outstanding:
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
        client.publish(self.topic_meta, wire.encode(self.meta), qos=1, retain=True)
        client.publish(self.topic_status, self._status("online"), qos=1, retain=True)
        with self._cond:
            self._connected = True
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
        with self._map_lock:
            self._delivered.append(seq)
        self.acked += 1
        with self._cond:
            if self._window_full:  # room in the window: more may wait on disk
                self._news = True
            self._cond.notify_all()  # the pump deletes it

    def _forget_delivered(self, now: bool = False) -> None:
        """Delete acknowledged batches from the buffer: all those acknowledged since the last turn of the
        pump, in one transaction. If the disk refuses, they stay (sent again after a restart, which the
        platform absorbs) and it is tried again DELETE_RETRY_S later."""
        if not now and time.monotonic() < self._delete_at:
            return
        with self._map_lock:
            seqs, self._delivered = self._delivered, []
        if not seqs:
            return
        try:
            self.buffer.delete(seqs)
        except sqlite3.Error as exc:
            with self._map_lock:
                self._delivered[:0] = seqs
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

    def _pump_loop(self) -> None:
        failing = False
        while True:
            self._forget_delivered()
            with self._cond:
                if self._stopping:
                    return
                self._window_full = self.outstanding >= self.window
                if not (self._connected and not self._window_full and self._news):
                    self._cond.wait(0.5)
                    continue
                self._news = False  # cleared before reading: a write landing meanwhile sets it again
                room = self.window - self.outstanding
                after = self._last_sent
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
            for seq, payload in batch:
                if not self._connected or self._stopping:
                    break
                info = self._client.publish(self.topic_data, payload, qos=1)
                with self._map_lock:
                    early = info.mid in self._early
                    if early:
                        self._early.discard(info.mid)
                    else:
                        self._outstanding[info.mid] = seq
                self._last_sent = seq
                self.published += 1
                if early:
                    self._acked(seq)
