"""``parkmon ingest sparkplug``: Sparkplug B edge nodes -> parkmon's own topics, which ingest stores.

The bridge subscribes ``spBv1.0/<group>/#`` (QoS 1, a persistent session, manual acks) for each group of the
mapping file, keeps a ``NodeSession`` per edge node, and publishes what it makes of each message as parkmon
wire messages (``parkmon/v1/<park>/<enterprise>/<gateway>/data|meta|status``, QoS 1). It acknowledges a
Sparkplug message to the broker only once the broker has taken all of those: a bridge that stops or loses
the broker in between gets the message again, which maps to the same (gateway, seq) and is stored once.
Ingest does the storing, so Sparkplug data gets its transactions, idempotency, dead letters, alerts and acks
unchanged (docs/decisions/0013). A payload that is not Sparkplug B protobuf is written to the store's dead
letters here (``parkmon ingest dead-letters`` shows it) with the reason, then acknowledged.

A gap in ``seq``, data before any birth or after a death, an alias no birth named: the bridge asks the node
for a rebirth (NCMD ``Node Control/Rebirth`` = true), at most once per ``rebirth_every_s``.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import signal
import ssl
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest.sparkplug import codec, mapping
from ingest.sparkplug.session import NodeSession, Outcome, SeqBases
from ingest.store import Store, open_store
from ingest.store import sparkplug_births as births
from parkmon.common import wire
from parkmon.common.clock import now_ms
from parkmon.common.env import default_db
from parkmon.common.received import Received
from parkmon.common.secrecy import check_production, mask_url, mqtt_checks, protect_logs, url_checks

log = logging.getLogger(__name__)

NAMESPACE = "spBv1.0"
KINDS = {"NBIRTH", "NDEATH", "DBIRTH", "DDEATH", "NDATA", "DDATA", "NCMD", "DCMD"}
REBIRTH = "Node Control/Rebirth"
MAX_PENDING = 500  # node messages handled, their output not yet taken by the broker: past it, wait


@dataclass
class BridgeConfig:
    mapping: mapping.Mapping
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    client_id: str = "parkmon-sparkplug-1"
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_tls_ca: str | None = None
    rebirth_every_s: float = 5.0


def parse_topic(topic: str) -> tuple[str, str, str, str] | None:
    """``spBv1.0/<group>/<TYPE>/<node>[/<device>]`` -> (group, type, node, device); None: not a node's topic
    (``spBv1.0/STATE/<host>``, a host application's)."""
    parts = topic.split("/")
    if len(parts) not in (4, 5) or parts[0] != NAMESPACE or parts[2] not in KINDS:
        return None
    return parts[1], parts[2], parts[3], parts[4] if len(parts) == 5 else ""


def rebirth_request(ts_ms: int) -> bytes:
    return codec.encode(codec.SpPayload(ts_ms, None, [codec.SpMetric(REBIRTH, None, ts_ms, codec.BOOLEAN, True)]))


class Bridge:
    def __init__(self, config: BridgeConfig, store: Store) -> None:
        self.config, self.store = config, store
        self.sessions: dict[tuple[str, str], NodeSession] = {}
        self.bases = SeqBases()
        self.stats = {"messages": 0, "dead_letters": 0, "batches": 0, "rebirths": 0, "unmapped": 0}
        self._queue: queue.Queue[Received] = queue.Queue(maxsize=1000)
        self._stop = threading.Event()
        self._generation = 0
        self._asked: dict[tuple[str, str], float] = {}  # last rebirth request per node (monotonic)
        self._noted: set[str] = set()
        self.connected = threading.Event()
        self._sub_mid = -1
        self._client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=config.client_id,
                                   clean_session=False, manual_ack=True)
        if config.mqtt_username:
            self._client.username_pw_set(config.mqtt_username, config.mqtt_password)
        if config.mqtt_tls_ca:
            self._client.tls_set(ca_certs=config.mqtt_tls_ca, cert_reqs=ssl.CERT_REQUIRED)
        self._client.reconnect_delay_set(min_delay=1, max_delay=2)  # a restarted broker is found within 2 s
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._worker = threading.Thread(target=self._work, name="sparkplug-bridge", daemon=True)

    def start(self) -> None:
        restored = self.restore_births()
        if restored:
            log.info("Sparkplug bridge: %d edge nodes restored from their kept births", restored)
        self._client.connect_async(self.config.mqtt_host, self.config.mqtt_port, keepalive=30)
        self._client.loop_start()
        self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        self._worker.join(10)
        self._client.disconnect()
        self._client.loop_stop()

    # ---- paho thread ---------------------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, rc: Any, _p: Any = None) -> None:
        if rc.is_failure:
            log.warning("broker %s:%s refused the Sparkplug bridge: %s", self.config.mqtt_host,
                        self.config.mqtt_port, rc)
            return
        self._generation += 1
        _rc, mid = client.subscribe([(f"{NAMESPACE}/{g}/#", 1) for g in self.config.mapping.groups])
        self._sub_mid = -1 if mid is None else mid
        log.info("Sparkplug bridge connected to %s:%s (session present: %s), groups %s", self.config.mqtt_host,
                 self.config.mqtt_port, flags.session_present, ", ".join(self.config.mapping.groups))

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, mid: int, _rc: Any, _p: Any = None) -> None:
        if mid == self._sub_mid:
            self.connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("Sparkplug bridge lost the broker (%s); reconnecting. Messages not acknowledged yet "
                        "come again and are stored once", rc)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        m = Received(msg.topic, bytes(msg.payload), msg.mid, msg.qos, self._generation, now_ms())
        while not self._stop.is_set():  # full: read nothing more from the broker until there is room
            try:
                self._queue.put(m, timeout=0.5)
                return
            except queue.Full:
                continue

    # ---- worker thread -------------------------------------------------------------------------
    def _work(self) -> None:
        # each node's message waits here, unacknowledged, until the broker has taken all it became; a wait per
        # message (one round trip each) held the bridge to ~1 000 points/s on loopback (bench/sparkplug.py)
        pending: deque[tuple[Received, list[mqtt.MQTTMessageInfo]]] = deque()
        while not self._stop.is_set():
            try:
                m = self._queue.get(timeout=0.05 if pending else 0.2)
            except queue.Empty:
                m = None
            if m is not None:
                try:
                    pending.append((m, self.handle(m)))
                except Exception:  # our bug, not the node's: keep the payload and the stream going
                    log.exception("Sparkplug bridge failed on a message from %s; kept as a dead letter", m.topic)
                    self._dead(m, "internal error in the Sparkplug bridge; please report it")
                    pending.append((m, []))
            self._settle(pending, wait=len(pending) >= MAX_PENDING)

    def _settle(self, pending: deque[tuple[Received, list[mqtt.MQTTMessageInfo]]], wait: bool) -> None:
        """Acknowledge, in order, each message whose output the broker has taken. One whose output failed (the
        broker lost meanwhile) is let go unacknowledged: the broker sends it again after the reconnect, and it
        maps to the same batch seqs."""
        while pending:
            m, infos = pending[0]
            if any(i.rc != mqtt.MQTT_ERR_SUCCESS for i in infos) or m.generation != self._generation:
                pending.popleft()
                continue
            if not all(i.is_published() for i in infos):
                if not wait or self._stop.is_set():
                    return
                infos[-1].wait_for_publish(0.5)
                continue
            pending.popleft()
            self._ack(m)

    def _ack(self, m: Received) -> None:
        if m.qos > 0 and m.generation == self._generation:  # an older connection's: the broker sends it again
            self._client.ack(m.mid, m.qos)
        self.stats["messages"] += 1

    def _dead(self, m: Received, reason: str) -> None:
        self.store.dead_letter(m.topic, m.payload, reason, m.received_ms)
        self.stats["dead_letters"] += 1

    def handle(self, m: Received) -> list[mqtt.MQTTMessageInfo]:
        """One message; returns what it was published as (the message is acknowledged once all is taken)."""
        parsed = parse_topic(m.topic)
        if parsed is None:
            return []
        group, kind, node, device = parsed
        if kind in ("NCMD", "DCMD"):
            return []  # commands to the nodes (ours among them)
        nmap = self.config.mapping.node(group, node)
        if nmap is None:
            self.stats["unmapped"] += 1
            self._note(f"edge node {group}/{node} is not in the mapping file: its messages are ignored")
            return []
        try:
            payload = codec.decode(m.payload)
        except codec.SparkplugError as exc:
            self._dead(m, f"{kind} from {group}/{node}{'/' + device if device else ''}: {exc}")
            return []
        log.debug("%s %s/%s/%s seq %s, %d metrics", kind, group, node, device, payload.seq, len(payload.metrics))
        session = self.sessions.get((group, node))
        if session is None:
            session = self.sessions[(group, node)] = NodeSession(group, node, nmap, self.bases)
        out = session.handle(kind, device, payload, m.received_ms)
        self._keep_births(session, kind, device, m)  # before the message is acknowledged
        return self._publish(nmap, out, group, node)

    def _keep_births(self, session: NodeSession, kind: str, device: str, m: Received) -> None:
        """The live births in the store, for the next bridge process (restore_births)."""
        g, n = session.group, session.node
        if kind == "NBIRTH" and session.alive:
            births.keep(self.store, g, n, "", m.payload, m.received_ms)
        elif kind == "DBIRTH" and device in session.devices:
            births.keep(self.store, g, n, device, m.payload, m.received_ms)
        elif kind == "DDEATH" and device not in session.devices:
            births.forget(self.store, g, n, device)
        elif kind == "NDEATH" and not session.alive:
            births.forget(self.store, g, n)

    def restore_births(self) -> int:
        """Sessions from the births a previous bridge process kept (before the broker hands over its backlog);
        returns how many nodes were restored. A kept birth that no longer decodes is skipped (its node is asked
        for a rebirth when its data comes, as before)."""
        kept: dict[tuple[str, str], list[tuple[str, codec.SpPayload, int]]] = {}
        for group, node, device, payload, received_ms in births.all_births(self.store):
            try:
                kept.setdefault((group, node), []).append((device, codec.decode(payload), received_ms))
            except codec.SparkplugError as exc:
                log.warning("kept birth of %s/%s/%s does not decode (%s); skipped", group, node, device or "-", exc)
        restored = 0
        for (group, node), items in kept.items():
            nmap = self.config.mapping.node(group, node)
            if nmap is None or not items or items[0][0] != "":
                continue  # no longer mapped, or a device's birth without its node's
            session = NodeSession(group, node, nmap, self.bases)
            session.restore(items, now_ms())
            if session.alive:
                self.sessions[(group, node)] = session
                restored += 1
        return restored

    def _publish(self, nmap: mapping.NodeMap, out: Outcome, group: str, node: str) -> list[mqtt.MQTTMessageInfo]:
        for note in out.notes:
            self._note(note)
        park, ent, gw = nmap.park, nmap.enterprise, nmap.gateway_id
        infos = []
        if out.meta is not None:
            infos.append(self._client.publish(wire.topic(park, ent, gw, "meta"), wire.encode(out.meta), 1, True))
        if out.status is not None:
            st = wire.Status(wire.VERSION, gw, "online" if out.status == "online" else "offline", now_ms(),
                             agent=f"sparkplug {group}/{node}")
            infos.append(self._client.publish(wire.topic(park, ent, gw, "status"), wire.encode(st), 1, True))
        for b in out.batches:
            infos.append(self._client.publish(wire.topic(park, ent, gw, "data"), wire.encode(b), 1))
            self.stats["batches"] += 1
        if out.rebirth is not None:
            self._ask_rebirth(group, node, out.rebirth)
        return infos

    def _ask_rebirth(self, group: str, node: str, why: str) -> None:
        last = self._asked.get((group, node))
        if last is not None and time.monotonic() - last < self.config.rebirth_every_s:
            return
        self._asked[(group, node)] = time.monotonic()
        self.stats["rebirths"] += 1
        log.warning("asking Sparkplug node %s/%s for a rebirth: %s", group, node, why)
        self._client.publish(f"{NAMESPACE}/{group}/NCMD/{node}", rebirth_request(now_ms()), 0)

    def _note(self, text: str) -> None:
        if text not in self._noted and len(self._noted) < 10_000:
            self._noted.add(text)
            log.warning("%s", text)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="parkmon ingest sparkplug",
                                 description="Sparkplug B edge nodes -> parkmon (ingest stores what this publishes)")
    ap.add_argument("--mapping", required=True, metavar="FILE",
                    help="YAML: Sparkplug group/node/device/metric -> park, enterprise, gateway, point, metric "
                         "(docs/sparkplug.md)")
    ap.add_argument("--mqtt-host", default="127.0.0.1")
    ap.add_argument("--mqtt-port", type=int, default=1883)
    ap.add_argument("--mqtt-username", default=os.environ.get("PARKMON_MQTT_USERNAME") or None,
                    help="default: $PARKMON_MQTT_USERNAME")
    ap.add_argument("--mqtt-password", default=os.environ.get("PARKMON_MQTT_PASSWORD") or None,
                    help="default: $PARKMON_MQTT_PASSWORD (better than this flag, which ps shows)")
    ap.add_argument("--mqtt-tls-ca", default=None, metavar="FILE", help="connect over TLS, trusting this CA")
    ap.add_argument("--client-id", default="parkmon-sparkplug-1", help="unique per bridge; keep it across restarts "
                    "(the broker holds the bridge's backlog under it)")
    ap.add_argument("--db", default=default_db(), help="database for the dead letters (malformed payloads)")
    ap.add_argument("--rebirth-every", type=float, default=5.0, metavar="S",
                    help="ask one node for a rebirth at most this often")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    protect_logs([args.mqtt_password], [args.db])
    # PARKMON_ENV=production: the same refusals as `parkmon ingest run` (no anonymous or clear-text MQTT)
    secrets, problems = mqtt_checks(args.mqtt_host, args.mqtt_username, args.mqtt_password,
                                    tls=bool(args.mqtt_tls_ca), where="MQTT (--mqtt-username, --mqtt-password)")
    check_production("parkmon ingest sparkplug", [*secrets, *url_checks("--db", args.db)], problems)
    try:
        m = mapping.load(args.mapping)
    except mapping.MappingError as exc:
        print(f"parkmon ingest sparkplug: {exc}", file=sys.stderr)
        return 2
    store = open_store(args.db)
    store.create_schema()
    bridge = Bridge(BridgeConfig(m, args.mqtt_host, args.mqtt_port, args.client_id, args.mqtt_username,
                                 args.mqtt_password, args.mqtt_tls_ca, args.rebirth_every), store)
    log.info("Sparkplug bridge %s: %d edge nodes mapped, dead letters to %s", args.client_id, len(m.nodes),
             mask_url(args.db))
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    bridge.start()
    stop.wait()
    bridge.stop()
    store.close()
    log.info("Sparkplug bridge stopped: %s", bridge.stats)
    return 0
