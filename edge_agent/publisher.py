"""MQTT side of the gateway: birth/death, the retained point catalogue, and the buffer pump.

The pump publishes buffered batches in seq order with QoS 1 and deletes a batch from the disk
buffer only on PUBACK. At most ``window`` batches are out at once, so a long outage never grows
memory: the backlog stays on disk. While the connection is down paho keeps the (few) unacked
messages and re-sends them on reconnect; after a restart the pump starts again from the oldest
batch still on disk. Both paths can send a batch twice; the platform de-duplicates on seq.
"""

from __future__ import annotations

import logging
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
        self._last_sent = 0
        # paho calls on_publish holding its own message lock, so the mid map has a lock of its
        # own that is never held around a paho call (holding _cond there would deadlock)
        self._map_lock = threading.Lock()
        self._outstanding: dict[int, int] = {}  # mid -> seq
        self._early: set[int] = set()  # acks that arrived before publish() returned the mid
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
        publish the death message, disconnect. What is left stays on disk for the next start."""
        deadline = time.monotonic() + drain_s
        with self._cond:
            while (self._connected and time.monotonic() < deadline
                   and (self.outstanding or self.buffer.depth()[0])):
                self._cond.wait(0.05)
            self._stopping = True
            self._cond.notify_all()
        if self._connected:
            info = self._client.publish(self.topic_status, self._status("offline"), qos=1, retain=True)
            info.wait_for_publish(timeout=1.0)
        self._client.disconnect()
        self._client.loop_stop()
        self._thread.join(timeout=2.0)

    def publish_health(self, health: wire.Health) -> None:
        """Best effort: health is a snapshot, the next one replaces it; nothing to buffer."""
        if self._connected:
            self._client.publish(self.topic_health, wire.encode(health), qos=0, retain=True)

    def notify(self) -> None:
        with self._cond:
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
        self.buffer.ack(seq)
        self.acked += 1
        with self._cond:
            self._cond.notify_all()

    def _pump(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (not self._connected or self.outstanding >= self.window):
                    self._cond.wait(0.5)
                if self._stopping:
                    return
                room = self.window - self.outstanding
                after = self._last_sent
            batch = self.buffer.pending(after, room)
            if not batch:
                with self._cond:
                    self._cond.wait(0.2)
                continue
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
