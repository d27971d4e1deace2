"""The park model: each tick it balances every enterprise and advances every meter.

Per enterprise and tick: load, available PV and wind, battery dispatch, then the grid balance
``import + generation + discharge = load + export + charge``; what the export limit refuses is
curtailed (never generated). Totalisers integrate power over the simulated time step exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .physics import AR1, clear_sky, load_shape, local_hour, wind_power_fraction

DEFAULT_PARK = Path(__file__).with_name("park_default.yaml")

# device kind -> register profile in edge_agent/profiles
PROFILES = {
    "grid_meter": "sim_grid_meter", "pv": "sim_pv_inverter", "wind": "sim_wind_turbine", "battery": "sim_battery",
    "water_meter": "sim_water_meter", "gas_meter": "sim_gas_meter", "cems": "sim_cems",
}

Values = dict[str, float]  # point name -> physical value


@dataclass
class Device:
    id: str
    name: str
    kind: str
    unit: int
    params: dict[str, Any]
    values: Values = field(default_factory=dict)


@dataclass
class Enterprise:
    key: str
    name: str
    load_kw: float
    shifts: str
    export_limit_kw: float
    water_m3h: float
    gas_m3h: float
    devices: list[Device]
    noise: AR1 | None = None
    last_balance: dict[str, float] = field(default_factory=dict)

    def device(self, kind: str) -> Device | None:
        return next((d for d in self.devices if d.kind == kind), None)


def load_definition(path: str | Path | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(Path(path or DEFAULT_PARK).read_text(encoding="utf-8"))
    return doc


class ParkModel:
    def __init__(self, definition: dict[str, Any], seed: int) -> None:
        self.info: dict[str, Any] = dict(definition["park"])
        self.rng = random.Random(seed)
        # one stream per quantity, so adding a device does not change the weather
        self.cloud = AR1(random.Random(f"{seed}-cloud"), 0.85, 0.2, 3 * 3600, 0.2, 1.0)
        self.wind = AR1(random.Random(f"{seed}-wind"), 7.5, 3.5, 2 * 3600, 0.0, 28.0)
        self.enterprises: list[Enterprise] = []
        for e in definition["enterprises"]:
            erng = random.Random(f"{seed}-{e['key']}")
            devices = [Device(d["id"], d.get("name", d["id"]), d["kind"], int(d["unit"]),
                              {k: v for k, v in d.items() if k not in ("id", "name", "kind", "unit")})
                       for d in e["devices"]]
            ent = Enterprise(e["key"], e.get("name", e["key"]), float(e["load_kw"]), e.get("shifts", "three"),
                             float(e.get("export_limit_kw", 0)), float(e.get("water_m3h", 0)),
                             float(e.get("gas_m3h", 0)), devices, AR1(erng, 1.0, 0.04, 600, 0.8, 1.2))
            for d in devices:
                d.values = self._initial(d, erng)
            self.enterprises.append(ent)
        self._cems_rng = random.Random(f"{seed}-cems")
        self._excursion_until: dict[str, float] = {}

    @staticmethod
    def _initial(d: Device, rng: random.Random) -> Values:
        """Counters start where a meter in service for a while would be."""
        if d.kind == "grid_meter":
            return {"import": round(rng.uniform(1e5, 5e5), 2), "export": round(rng.uniform(1e3, 1e4), 2), "power": 0.0}
        if d.kind in ("pv", "wind"):
            return {"generation": round(rng.uniform(1e4, 1e5), 1), "power": 0.0,
                    "curtailed": round(rng.uniform(0, 1e3), 1)}
        if d.kind == "battery":
            return {"charge": round(rng.uniform(1e4, 5e4), 1), "discharge": 0.0, "power": 0.0, "soc": 40.0}
        if d.kind == "water_meter":
            return {"volume": round(rng.uniform(1e3, 1e4), 3), "flow": 0.0}
        if d.kind == "gas_meter":
            return {"volume": round(rng.uniform(1e4, 1e5), 2)}
        if d.kind == "cems":
            return {"so2": 30.0, "nox": 50.0, "particulate": 5.0, "o2": 9.0, "flow": 60.0, "temperature": 60.0}
        raise ValueError(f"device {d.id}: unknown kind {d.kind!r}; known: {', '.join(PROFILES)}")

    def step(self, sim_ms: int, dt_s: float) -> None:
        hour = local_hour(sim_ms)
        sun = clear_sky(sim_ms, float(self.info.get("latitude", 41.0)), float(self.info.get("longitude", 111.0)))
        cloud = self.cloud.step(dt_s)
        wind_speed = self.wind.step(dt_s)
        dt_h = dt_s / 3600.0
        for ent in self.enterprises:
            self._balance(ent, hour, sun * cloud, wind_power_fraction(wind_speed), dt_h, dt_s)

    def _balance(self, ent: Enterprise, hour: float, pv_frac: float, wind_frac: float,
                 dt_h: float, dt_s: float) -> None:
        noise = ent.noise.step(dt_s) if ent.noise else 1.0
        load = ent.load_kw * load_shape(hour, ent.shifts) * noise
        re_devs = [d for d in ent.devices if d.kind in ("pv", "wind")]
        avail = {d.id: float(d.params["capacity_kw"]) * (pv_frac if d.kind == "pv" else wind_frac) for d in re_devs}
        re_avail = sum(avail.values())

        charge = discharge = 0.0
        bess = ent.device("battery")
        if bess is not None:
            cap, pmax = float(bess.params["capacity_kwh"]), float(bess.params["power_kw"])
            soc = bess.values["soc"]
            room_kw = max(0.0, (95.0 - soc) / 100 * cap / 0.95 / dt_h)  # AC power that fills it to 95 %
            avail_kw = max(0.0, (soc - 10.0) / 100 * cap * 0.95 / dt_h)  # AC power that empties it to 10 %
            surplus = re_avail - load
            if surplus > 0:
                charge = min(pmax, surplus, room_kw)
            elif hour < 6 and soc < 50:  # valley tariff: top up from the grid overnight
                charge = min(pmax * 0.5, room_kw)
            elif 18 <= hour < 22:  # evening peak
                discharge = min(pmax, load - re_avail, avail_kw)
            bess.values["soc"] = soc + (charge * 0.95 - discharge / 0.95) * dt_h / cap * 100
            bess.values["charge"] += charge * dt_h
            bess.values["discharge"] += discharge * dt_h
            bess.values["power"] = discharge - charge

        net = load + charge - re_avail - discharge  # >0 import, <0 surplus
        imp = max(0.0, net)
        exp = min(max(0.0, -net), ent.export_limit_kw)
        curtail = max(0.0, -net) - exp
        for d in re_devs:
            share = avail[d.id] / re_avail if re_avail > 0 else 0.0
            actual = avail[d.id] - curtail * share
            d.values["power"] = actual
            d.values["generation"] += actual * dt_h
            d.values["curtailed"] += curtail * share * dt_h
        grid = ent.device("grid_meter")
        if grid is not None:
            grid.values["import"] += imp * dt_h
            grid.values["export"] += exp * dt_h
            grid.values["power"] = imp - exp
        ent.last_balance = {"load": load, "import": imp, "export": exp, "re": re_avail - curtail,
                            "curtail": curtail, "charge": charge, "discharge": discharge}
        self._utilities(ent, hour, noise, dt_h, dt_s)

    def _utilities(self, ent: Enterprise, hour: float, noise: float, dt_h: float, dt_s: float) -> None:
        activity = load_shape(hour, ent.shifts) * noise
        for d in ent.devices:
            if d.kind == "water_meter":
                flow = ent.water_m3h * activity
                d.values["flow"] = flow
                d.values["volume"] += flow * dt_h
            elif d.kind == "gas_meter":
                d.values["volume"] += ent.gas_m3h * activity * dt_h
            elif d.kind == "cems":
                self._cems(f"{ent.key}.{d.id}", d, activity, dt_s)

    def _cems(self, key: str, d: Device, activity: float, dt_s: float) -> None:
        r = self._cems_rng
        until = self._excursion_until.get(key, 0.0) - dt_s
        if until <= 0 and r.random() < dt_s / (48 * 3600):  # about one excursion in two simulated days
            until = 20 * 60.0
        self._excursion_until[key] = until
        factor = 3.2 if until > 0 else 1.0  # a desulphurisation upset: SO2 well over a 100 mg/m3 limit
        v = d.values
        v["so2"] = max(0.0, 30 * factor * (0.9 + 0.2 * r.random()))
        v["nox"] = max(0.0, 50 * (0.9 + 0.2 * r.random()))
        v["particulate"] = max(0.0, 5 * (0.8 + 0.4 * r.random()))
        v["o2"] = 9.0 + r.gauss(0, 0.3)
        v["flow"] = 60.0 * (0.7 + 0.3 * activity) + r.gauss(0, 1.0)
        v["temperature"] = 60.0 + r.gauss(0, 1.5)
