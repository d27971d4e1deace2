"""The park office: plays the systems whose data no Modbus meter gives, through the same doors real
park systems use — gate events over MQTT (交通物流), and over the HTTP API the monthly economic
figures (经济运行), hazardous-waste records and manifests (环境保护), the emergency register (安全应急)
and the directory, notices and service requests (综合服务).

Traffic follows the simulated clock's hour of day (busy 08-18, a trickle at night), with tankers
carrying hazardous goods; events are stamped with the wall clock like the gateways' readings, so a
simulated hour of dwell is a few wall seconds at demo speed. Deterministic given the seed.
"""

from __future__ import annotations

import heapq
import json
import math
import random
import sys
import threading
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from parkmon.common import wire
from parkmon.common.clock import CHINA, now_ms
from simulators.definition import ParkDef
from simulators.physics import local_hour

OPERATOR = "park"  # the park's operating company: owner of the gates in the registry
GATES = ("east", "west")
_PROVINCES = "蒙蒙蒙蒙晋冀陕宁甘京"  # mostly local plates


def registry_doc(spec: ParkDef) -> dict[str, Any]:
    """The park definition plus the operator's gates: what the demo registers once."""
    doc = spec.model_dump(mode="json")
    doc["enterprises"].append({"key": OPERATOR, "name": f"{spec.park.name_zh}管委会", "devices": [
        {"id": g, "name": f"{'东' if g == 'east' else '西'}门道闸", "kind": "gate"} for g in GATES]})
    return doc


class GateTraffic:
    """Vehicles arriving by the simulated hour, each leaving after a simulated dwell."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed ^ 0x6A7E)
        self.leaving: list[tuple[float, int, dict[str, Any]]] = []  # (sim ms, n, event) heap
        self.n = 0

    def rate_per_hour(self, hour: float) -> float:
        return 18.0 if 8 <= hour < 18 else (6.0 if 6 <= hour < 22 else 1.5)

    def step(self, sim_ms: int, dt_s: float, wall_ms: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        expected = self.rate_per_hour(local_hour(sim_ms)) * dt_s / 3600
        arrivals = self._poisson(expected)
        for _ in range(arrivals):
            self.n += 1
            tanker = self.rng.random() < 0.15
            cls = "tanker" if tanker else self.rng.choice(("truck", "truck", "van", "car"))
            plate = f"{self.rng.choice(_PROVINCES)}{self.rng.choice('ABCDEFGHJK')}{self.rng.randrange(10**5):05d}"
            gate = self.rng.choice(GATES)
            ev = {"id": f"{gate}-{self.n}-in", "gate": gate, "ts": wall_ms, "plate": plate, "class": cls,
                  "hazardous": tanker, "direction": "in", "enterprise": None}
            out.append(ev)
            dwell_s = self.rng.lognormvariate(math.log(2400), 0.6)  # about 40 simulated minutes
            heapq.heappush(self.leaving, (sim_ms + dwell_s * 1000, self.n, {**ev, "id": f"{gate}-{self.n}-out",
                                                                            "direction": "out"}))
        while self.leaving and self.leaving[0][0] <= sim_ms:
            _t, _n, ev = heapq.heappop(self.leaving)
            out.append({**ev, "ts": wall_ms})
        return out

    def _poisson(self, lam: float) -> int:
        k, p, limit = 0, 1.0, math.exp(-lam)
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1


class ParkOffice:
    def __init__(self, spec: ParkDef, seed: int, api_base: str, mqtt_host: str, mqtt_port: int) -> None:
        self.spec, self.api = spec, api_base.rstrip("/")
        self.park = spec.park.key
        self.rng = random.Random(seed ^ 0x0FF1CE)
        self.traffic = GateTraffic(seed)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"parkmon-gates-{self.park}")
        self.client.connect_async(mqtt_host, mqtt_port)
        self.client.loop_start()
        self.topic = wire.topic(self.park, OPERATOR, "gates", "gate")
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_day: str | None = None
        self._manifest_no = 0
        self._last_ts = 0

    # ---- HTTP ---------------------------------------------------------------------------------
    def _send(self, method: str, path: str, body: Any) -> Any:
        req = urllib.request.Request(f"{self.api}{path}", method=method,
                                     data=json.dumps(body, ensure_ascii=False).encode(),
                                     headers={"Content-Type": "application/json", "X-Parkmon-Actor": "park-office-sim"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:  # a refusal is worth seeing, not worth stopping the park
            why = f"park-office-sim: {method} {path} refused: {exc.code} {exc.read()[:300].decode(errors='replace')}"
            self.errors.append(why)
            print(why, file=sys.stderr, flush=True)
            return None

    def setup(self, now_ms: int) -> None:
        """Register the park (with its gates) and write what a park office has on file."""
        p = f"/parks/{self.park}"
        self._send("PUT", p, registry_doc(self.spec))
        today = datetime.fromtimestamp(now_ms / 1000, tz=CHINA)
        for ent in self.spec.enterprises:
            self._send("PUT", f"{p}/enterprises/{ent.key}/profile", {
                "industry": "数据中心" if "数据中心" in ent.name else "制造业", "contact_name": "值班室",
                "contact_phone": "0471-6660000", "hazwaste_storage_limit_t": 50.0})
            for back in (3, 2, 1):  # the last three complete months, sized by the enterprise's load
                y, m = today.year, today.month - back
                y, m = (y - 1, m + 12) if m < 1 else (y, m)
                output = round(ent.load_kw * 0.72 * (0.9 + 0.2 * self.rng.random()) * 3, 1)  # 万元
                self._send("PUT", f"{p}/economy", {"enterprise": ent.key, "month": f"{y:04d}-{m:02d}",
                                                   "output_value": output,
                                                   "value_added": round(output * 0.27, 1)})
            for d in ent.devices:
                if d.kind in ("pressure_vessel", "pipeline"):
                    self._send("PUT", f"{p}/enterprises/{ent.key}/hazard-sources/{d.id}", {
                        "name": d.name or d.id, "kind": d.kind, "level": "3", "devices": [d.id],
                        "contact_name": "安全科", "contact_phone": "0471-6661119", "plan_ref": f"YA-{ent.key}-01"})
        self._send("POST", f"{p}/notices", {"title": "园区智慧平台上线",
                                            "body": "六系统数据已接入, 请各企业核对台账。"})
        self._send("POST", f"{p}/service-requests", {"enterprise": self.spec.enterprises[0].key,
                                                     "category": "power", "title": "申请增加10kV备用回路"})

    def _daily(self, sim_ms: int, wall_ms: int) -> None:
        """Once a simulated day: waste generated where there are emission outlets; a manifest a week."""
        day = datetime.fromtimestamp(sim_ms / 1000, tz=CHINA).strftime("%Y-%m-%d")
        if day == self._last_day:
            return
        first = self._last_day is None
        self._last_day = day
        for ent in self.spec.enterprises:
            if not any(d.kind in ("cems", "wastewater") for d in ent.devices):
                continue
            q = round(0.4 + self.rng.random(), 3)
            self._send("POST", f"/parks/{self.park}/hazwaste/records", {
                "enterprise": ent.key, "ts": wall_ms, "waste_code": "772-006-49", "name": "废活性炭",
                "action": "generated", "quantity_t": q})
            if not first and self.rng.random() < 1 / 7:
                self._manifest_no += 1
                self._send("POST", f"/parks/{self.park}/hazwaste/manifests", {
                    "manifest_no": f"SIM{wall_ms // 1000}{self._manifest_no:03d}", "enterprise": ent.key,
                    "waste_code": "772-006-49", "quantity_t": q, "transporter": "蒙运危货运输有限公司",
                    "receiver": "内蒙古危险废物处置中心", "shipped": wall_ms})

    @property
    def last_event_ms(self) -> int:
        """The newest gate event's stamp: in compressed time a burst is stamped a millisecond apart, so it
        can run ahead of the wall clock; what counts events "up to now" sees them all once now passes it."""
        return self._last_ts

    # ---- loop ---------------------------------------------------------------------------------
    def tick(self, sim_ms: int, dt_s: float) -> int:
        wall_ms = now_ms()
        events = self.traffic.step(sim_ms, dt_s, wall_ms)
        for ev in events:  # a camera stamps each passage on its own; compressed time must not merge them
            ev["ts"] = self._last_ts = max(ev["ts"], self._last_ts + 1)
        if events:
            self.client.publish(self.topic, json.dumps({"v": 1, "events": events}, ensure_ascii=False), qos=1)
        self._daily(sim_ms, wall_ms)
        return len(events)

    def start(self, sim_clock: Any, every_s: float = 1.0) -> ParkOffice:
        """Run in a thread; ``sim_clock()`` gives the simulator's current simulated time (ms)."""
        self.setup(now_ms())

        def run() -> None:
            last = sim_clock()
            while not self._stop.wait(every_s):
                now = sim_clock()
                self.tick(now, max(0.0, (now - last) / 1000))
                last = now

        self._thread = threading.Thread(target=run, name="park-office", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        self.client.loop_stop()
        self.client.disconnect()
