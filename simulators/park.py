"""The park model: each tick it balances every enterprise and advances every meter.

Per enterprise and tick: load, available PV and wind, battery dispatch, then the grid balance
``import + generation + discharge = load + export + charge``; what the export limit refuses is
curtailed (never generated). Totalisers integrate power over the simulated time step exactly.
Every random quantity has its own ``random.Random`` stream, so adding a device does not change
the weather and the same seed gives the same park. Safety and wastewater devices (pressure vessels,
pipelines, gas detectors, valves, fire alarms, wastewater outlets) are modelled in ``safety.py``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, ClassVar

from simulators import safety
from simulators.definition import KIND_VALUES, PROFILES, DeviceDef, ParkDef, load_definition, parse_definition
from simulators.physics import AR1, clear_sky, load_shape, local_hour, wind_power_fraction

__all__ = ["BALANCE_FIELDS", "PROFILES", "Device", "Enterprise", "ParkModel", "load_definition"]

Values = dict[str, float]  # point name -> physical value

SOC_MIN, SOC_MAX = 10.0, 95.0  # % of capacity the battery management keeps to
VALLEY_SOC = 50.0  # overnight grid charging stops here: stored energy is a mix of RE and grid
EFFICIENCY = 0.95  # one way; round trip 0.9025
PEAK = (18.0, 22.0)  # evening peak tariff: discharge
VALLEY = (0.0, 6.0)  # night valley tariff: charge from the grid

# what the ground truth logs per enterprise and tick (kW, except soc in %)
BALANCE_FIELDS = ("load", "pv", "wind", "re", "curtail", "import", "export", "charge", "charge_re",
                  "discharge", "discharge_re", "soc")

COUNTERS = ("import", "export", "generation", "curtailed", "charge", "discharge", "volume", "mass", "energy")
# a data centre's PUE over the day: cooling works hardest in the afternoon heat
PUE_NIGHT, PUE_AFTERNOON = 1.22, 1.34


@dataclass
class Device:
    id: str
    name: str
    kind: str
    unit: int
    profile: str
    spec: DeviceDef
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
    noise: AR1
    steam_th: float = 0.0
    heat_gjh: float = 0.0
    stored_re_kwh: float = 0.0  # battery content by origin, so discharge can be attributed
    stored_grid_kwh: float = 0.0
    last_balance: dict[str, float] = field(default_factory=dict)

    def device(self, kind: str) -> Device | None:
        return next((d for d in self.devices if d.kind == kind), None)


class _Cems:
    """Smooth noise around typical outlet values, plus rare excursions over a permit limit."""

    BASE: ClassVar[dict[str, float]] = {"so2": 30.0, "nox": 50.0, "particulate": 5.0}

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.noise = {k: AR1(rng, 1.0, 0.08, 600, 0.5, 1.5) for k in ("so2", "nox", "particulate")}
        self.o2 = AR1(rng, 9.0, 0.4, 900, 6.0, 12.0)
        self.temp = AR1(rng, 60.0, 2.0, 1800, 50.0, 75.0)
        self.excursion: tuple[str, float] | None = None  # (pollutant, simulated seconds left)

    def step(self, values: Values, activity: float, dt_s: float) -> None:
        if self.excursion is not None:
            what, left = self.excursion
            self.excursion = (what, left - dt_s) if left - dt_s > 0 else None
        elif self.rng.random() < dt_s / (48 * 3600):  # about one in two simulated days, 20 min each
            self.excursion = (self.rng.choice(tuple(self.BASE)), 20 * 60.0)
        for k, base in self.BASE.items():
            upset = 4.0 if self.excursion is not None and self.excursion[0] == k else 1.0
            values[k] = base * upset * self.noise[k].step(dt_s)
        values["o2"] = self.o2.step(dt_s)
        values["flow"] = 60.0 * (0.7 + 0.3 * activity) * self.noise["nox"].x
        values["temperature"] = self.temp.step(dt_s)


def pue_at(hour: float) -> float:
    """PUE by local hour: lowest before dawn, highest at 15:00 (a smooth cosine between)."""
    return PUE_NIGHT + (PUE_AFTERNOON - PUE_NIGHT) * (1 - math.cos(2 * math.pi * (hour - 3) / 24)) / 2


class ParkModel:
    def __init__(self, definition: dict[str, Any] | ParkDef, seed: int) -> None:
        self.spec = parse_definition(definition)
        self.info: dict[str, Any] = self.spec.park.model_dump()
        self.seed = seed
        # one stream per quantity, so adding a device does not change the weather
        self.cloud = AR1(random.Random(f"{seed}-cloud"), 0.85, 0.2, 3 * 3600, 0.2, 1.0)
        self.wind = AR1(random.Random(f"{seed}-wind"), 7.5, 3.5, 2 * 3600, 0.0, 28.0)
        self.enterprises: list[Enterprise] = []
        self._cems: dict[tuple[str, str], _Cems] = {}
        # safety and wastewater devices (simulators/safety.py): noise and episode streams of their own
        self._process: dict[tuple[str, str], safety.ProcessDevice] = {}
        for e in self.spec.enterprises:
            erng = random.Random(f"{seed}-{e.key}")
            devices = [Device(d.id, d.name or d.id, d.kind, d.unit, d.profile_name, d) for d in e.devices]
            ent = Enterprise(e.key, e.name or e.key, e.load_kw, e.shifts, e.export_limit_kw, e.water_m3h,
                             e.gas_m3h, devices, AR1(erng, 1.0, 0.04, 600, 0.8, 1.2))
            ent.steam_th, ent.heat_gjh = e.steam_th, e.heat_gjh
            for d in devices:
                d.values = self._initial(d, random.Random(f"{seed}-{e.key}-{d.id}"))
                if d.kind == "battery":
                    ent.stored_grid_kwh = d.values["soc"] / 100 * float(d.spec.capacity_kwh or 0)
                if d.kind == "cems":
                    self._cems[(e.key, d.id)] = _Cems(random.Random(f"{seed}-{e.key}-{d.id}-cems"))
                process = safety.make(d.spec, e.water_m3h, random.Random(f"{seed}-{e.key}-{d.id}-noise"),
                                      random.Random(f"{seed}-{e.key}-{d.id}-events"))
                if process is not None:
                    self._process[(e.key, d.id)] = process
            self.enterprises.append(ent)

    @staticmethod
    def _initial(d: Device, rng: random.Random) -> Values:
        """Counters start where a meter in service for a while would be."""
        if d.kind == "grid_meter":
            return {"import": round(rng.uniform(1e5, 5e5), 2), "export": round(rng.uniform(1e3, 1e4), 2), "power": 0.0}
        if d.kind in ("pv", "wind"):
            return {"generation": round(rng.uniform(1e4, 1e5), 1), "power": 0.0,
                    "curtailed": round(rng.uniform(0, 1e3), 1)}
        if d.kind == "battery":
            return {"charge": round(rng.uniform(1e4, 5e4), 1), "discharge": round(rng.uniform(5e3, 1e4), 1),
                    "power": 0.0, "soc": 40.0}
        if d.kind == "water_meter":
            return {"volume": round(rng.uniform(1e3, 1e4), 3), "flow": 0.0}
        if d.kind == "gas_meter":
            return {"volume": round(rng.uniform(1e4, 1e5), 2)}
        if d.kind == "steam_meter":
            return {"mass": round(rng.uniform(1e3, 1e4), 2), "flow": 0.0}
        if d.kind == "heat_meter":
            return {"energy": round(rng.uniform(1e3, 1e4), 2), "power": 0.0}
        if d.kind == "it_meter":
            return {"energy": round(rng.uniform(1e5, 1e6), 2), "power": 0.0}
        if d.kind == "cems":
            return {"so2": 30.0, "nox": 50.0, "particulate": 5.0, "o2": 9.0, "flow": 60.0, "temperature": 60.0}
        return dict.fromkeys(KIND_VALUES[d.kind], 0.0)  # safety / wastewater: set by their first step

    def step(self, sim_ms: int, dt_s: float) -> None:
        """Advance to ``sim_ms``: powers are those at ``sim_ms``; counters add power x ``dt_s``."""
        hour = local_hour(sim_ms)
        sun = clear_sky(sim_ms, float(self.info["latitude"]), float(self.info["longitude"]))
        pv_frac = sun * self.cloud.step(dt_s)
        wind_frac = wind_power_fraction(self.wind.step(dt_s))
        for ent in self.enterprises:
            self._balance(ent, sim_ms, hour, pv_frac, wind_frac, dt_s)

    def _balance(self, ent: Enterprise, sim_ms: int, hour: float, pv_frac: float, wind_frac: float,
                 dt_s: float) -> None:
        dt_h = dt_s / 3600.0
        noise = ent.noise.step(dt_s)
        load = ent.load_kw * load_shape(hour, ent.shifts) * noise
        re_devs = [d for d in ent.devices if d.kind in ("pv", "wind")]
        avail = {d.id: float(d.spec.capacity_kw or 0) * (pv_frac if d.kind == "pv" else wind_frac)
                 for d in re_devs}
        re_avail = sum(avail.values())
        charge, charge_re, discharge, discharge_re = self._dispatch(ent, hour, re_avail - load, dt_h)

        net = load + charge - re_avail - discharge  # > 0 import, < 0 surplus
        imp = max(0.0, net)
        exp = min(max(0.0, -net), ent.export_limit_kw)
        curtail = max(0.0, -net) - exp
        actual = {"pv": 0.0, "wind": 0.0}
        for d in re_devs:
            share = avail[d.id] / re_avail if re_avail > 0 else 0.0
            out = avail[d.id] - curtail * share
            actual[d.kind] += out
            d.values["power"] = out
            d.values["generation"] += out * dt_h
            d.values["curtailed"] += curtail * share * dt_h
        grid = ent.device("grid_meter")
        if grid is not None:
            grid.values["import"] += imp * dt_h
            grid.values["export"] += exp * dt_h
            grid.values["power"] = imp - exp
        bess = ent.device("battery")
        ent.last_balance = {"load": load, "pv": actual["pv"], "wind": actual["wind"],
                            "re": actual["pv"] + actual["wind"], "curtail": curtail, "import": imp, "export": exp,
                            "charge": charge, "charge_re": charge_re, "discharge": discharge,
                            "discharge_re": discharge_re, "soc": bess.values["soc"] if bess else 0.0}
        self._utilities(ent, sim_ms, hour, noise, dt_s)

    @staticmethod
    def _dispatch(ent: Enterprise, hour: float, surplus: float, dt_h: float) -> tuple[float, float, float, float]:
        """Battery rule: store RE surplus, top up from the grid in the night valley, discharge at the peak.

        Returns AC power (kW): charge, the part of it from RE, discharge, the part of it that was RE.
        """
        bess = ent.device("battery")
        if bess is None:
            return 0.0, 0.0, 0.0, 0.0
        cap, pmax = float(bess.spec.capacity_kwh or 0), float(bess.spec.power_kw or 0)
        stored = ent.stored_re_kwh + ent.stored_grid_kwh
        soc = stored / cap * 100
        charge = charge_re = discharge = discharge_re = 0.0
        if dt_h > 0:
            def fill_to(target: float) -> float:  # AC power that brings the SOC to target in this step
                return max(0.0, (target - soc) / 100 * cap / EFFICIENCY / dt_h)

            empty_kw = max(0.0, (soc - SOC_MIN) / 100 * cap * EFFICIENCY / dt_h)
            if surplus > 0:
                charge = charge_re = min(pmax, surplus, fill_to(SOC_MAX))
            elif VALLEY[0] <= hour < VALLEY[1]:
                charge = min(pmax * 0.5, fill_to(VALLEY_SOC))
            elif PEAK[0] <= hour < PEAK[1]:
                discharge = min(pmax, -surplus, empty_kw)  # serve load only: never export from storage
        if discharge > 0 and stored > 0:
            taken = discharge / EFFICIENCY * dt_h
            re_part = ent.stored_re_kwh / stored
            discharge_re = discharge * re_part
            ent.stored_re_kwh -= taken * re_part
            ent.stored_grid_kwh -= taken * (1 - re_part)
        ent.stored_re_kwh += charge_re * EFFICIENCY * dt_h
        ent.stored_grid_kwh += (charge - charge_re) * EFFICIENCY * dt_h
        bess.values["soc"] = (ent.stored_re_kwh + ent.stored_grid_kwh) / cap * 100
        bess.values["charge"] += charge * dt_h
        bess.values["discharge"] += discharge * dt_h
        bess.values["power"] = discharge - charge
        return charge, charge_re, discharge, discharge_re

    def _utilities(self, ent: Enterprise, sim_ms: int, hour: float, noise: float, dt_s: float) -> None:
        activity = load_shape(hour, ent.shifts) * noise
        dt_h = dt_s / 3600.0
        for d in ent.devices:
            if d.kind == "water_meter":
                flow = ent.water_m3h * activity
                d.values["flow"] = flow
                d.values["volume"] += flow * dt_h
            elif d.kind == "gas_meter":
                d.values["volume"] += ent.gas_m3h * activity * dt_h
            elif d.kind == "steam_meter":  # process steam follows production
                d.values["flow"] = ent.steam_th * activity
                d.values["mass"] += d.values["flow"] * dt_h
            elif d.kind == "it_meter":  # IT load = facility load / PUE of the hour
                d.values["power"] = ent.last_balance["load"] / pue_at(hour)
                d.values["energy"] += d.values["power"] * dt_h
            elif d.kind == "heat_meter":  # space heating: more at night, whatever the shifts
                d.values["power"] = ent.heat_gjh * noise * (1.2 if hour < 7 or hour >= 19 else 0.8)
                d.values["energy"] += d.values["power"] * dt_h
            elif d.kind == "cems":
                self._cems[(ent.key, d.id)].step(d.values, activity, dt_s)
            elif (process := self._process.get((ent.key, d.id))) is not None:
                process.step(d.values, sim_ms / 1000.0, dt_s, activity)

    def reset_counters(self, enterprise: str, device: str) -> None:
        """A meter replaced or reset: its totalisers start again from zero."""
        d = self.find(enterprise, device)
        for name in COUNTERS:
            if name in d.values:
                d.values[name] = 0.0

    def find(self, enterprise: str, device: str) -> Device:
        for e in self.enterprises:
            if e.key == enterprise:
                for d in e.devices:
                    if d.id == device:
                        return d
                raise KeyError(f"enterprise {enterprise} has no device {device!r}; "
                               f"it has {', '.join(x.id for x in e.devices)}")
        raise KeyError(f"no enterprise {enterprise!r}; the park has {', '.join(x.key for x in self.enterprises)}")
