"""Process devices of a chemical park: pressure vessels and pipelines, gas detectors, valves and gates,
fire alarms (安全应急管理) and wastewater outlets (环境保护监测).

Each device sits at a normal operating point with AR(1) noise and now and then has an *episode*: a
pressure excursion above the design pressure, a gas leak, a valve closing or a gate opening, a fire
alarm, a wastewater exceedance. Episodes are scheduled in simulated time (Poisson starts at the
device's ``events_per_day``, each lasting a random time) from their own ``random.Random`` stream,
so the same seed gives the same episodes whatever the step; an episode that starts and ends
between two ticks is missed, as a real poll would miss it. The schedule starts as if the plant had
been running before the simulation, so an episode may be under way at the first tick.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import ClassVar, Protocol

from simulators.definition import DeviceDef
from simulators.physics import AR1

Values = dict[str, float]

DAY_S = 86400.0

# default episodes per simulated day, per kind (a device's events_per_day overrides it)
EVENTS_PER_DAY: dict[str, float] = {
    "pressure_vessel": 3.0, "pipeline": 3.0,  # excursions above design pressure
    "gas_detector": 2.0,  # leaks
    "valve": 3.0,  # the valve closes, and the gate opens, about this often each
    "fire_alarm": 0.01,  # about once in a hundred days
    "wastewater": 0.5,  # an exceedance every other day
}


@dataclass(frozen=True)
class Episode:
    start_s: float
    end_s: float
    u: float  # two uniform draws in [0, 1) for the episode's own size and kind
    v: float


class Episodes:
    """Poisson-timed episodes of random length, looked up by simulated time."""

    RAMP = 0.2  # the level rises over the first 20 % of an episode and falls over the last 20 %

    def __init__(self, rng: random.Random, per_day: float, min_s: float, max_s: float) -> None:
        self.rng, self.rate, self.min_s, self.max_s = rng, per_day / DAY_S, min_s, max_s
        self.current: Episode | None = None

    def _draw(self, after_s: float) -> Episode:
        start = after_s + self.rng.expovariate(self.rate) if self.rate > 0 else math.inf
        return Episode(start, start + self.rng.uniform(self.min_s, self.max_s), self.rng.random(), self.rng.random())

    def at(self, t_s: float) -> tuple[float, Episode | None]:
        """(level 0..1 of the episode at ``t_s``, that episode) or (0, None) between episodes."""
        if self.current is None:  # as if running for a while: an episode may be under way already
            self.current = self._draw(t_s - self.max_s - (1 / self.rate if self.rate > 0 else 0.0))
        while self.current.end_s <= t_s:
            self.current = self._draw(self.current.end_s)
        ep = self.current
        if t_s < ep.start_s:
            return 0.0, None
        frac = (t_s - ep.start_s) / (ep.end_s - ep.start_s)
        return min(1.0, frac / self.RAMP, (1.0 - frac) / self.RAMP), ep


class ProcessDevice(Protocol):
    def step(self, values: Values, t_s: float, dt_s: float, activity: float) -> None: ...


def _events(spec: DeviceDef) -> float:
    return spec.events_per_day if spec.events_per_day is not None else EVENTS_PER_DAY[spec.kind]


class Pressure:
    """Pressure vessel (压力容器) or pipeline (管道): pressure and temperature with excursions.

    Normally ``operating × noise`` (noise within ±6 %, so at the default 75 % of design it stays
    below design); an excursion (30 s to 10 min) lifts the pressure to 1.05-1.15 × design and the
    temperature by 10-20 °C.
    """

    # kind -> (default operating temperature °C, noise time constant s, relative pressure noise)
    KINDS: ClassVar[dict[str, tuple[float, float, float]]] = {
        "pressure_vessel": (60.0, 900.0, 0.02), "pipeline": (30.0, 120.0, 0.03)}

    def __init__(self, spec: DeviceDef, noise: random.Random, events: random.Random) -> None:
        temp, tau, sigma = self.KINDS[spec.kind]
        self.design = float(spec.design_pressure_mpa or 0)
        self.operating = spec.operating_pressure_mpa or 0.75 * self.design
        self.p_noise = AR1(noise, 1.0, sigma, tau, 0.94, 1.06)
        mean_t = spec.operating_temperature_c if spec.operating_temperature_c is not None else temp
        self.temp = AR1(noise, mean_t, 1.5, 4 * tau, mean_t - 8.0, mean_t + 8.0)
        self.excursions = Episodes(events, _events(spec), 30.0, 600.0)

    def step(self, values: Values, t_s: float, dt_s: float, activity: float) -> None:
        level, ep = self.excursions.at(t_s)
        p = self.operating * self.p_noise.step(dt_s)
        t = self.temp.step(dt_s)
        if ep is not None:
            p += level * ((1.05 + 0.10 * ep.u) * self.design - self.operating)
            t += level * (10.0 + 10.0 * ep.v)
        values["pressure"], values["temperature"] = p, t


class GasDetector:
    """Combustible (%LEL, 0 normally) and toxic (H2S ppm, a trace normally) gas; leaks of 30 s to
    10 min reach 20-50 %LEL and 5-40 ppm."""

    def __init__(self, spec: DeviceDef, noise: random.Random, events: random.Random) -> None:
        self.trace = AR1(noise, 0.3, 0.2, 600.0, 0.0, 1.0)
        self.leaks = Episodes(events, _events(spec), 30.0, 600.0)

    def step(self, values: Values, t_s: float, dt_s: float, activity: float) -> None:
        level, ep = self.leaks.at(t_s)
        trace = self.trace.step(dt_s)
        values["lel"] = level * (20.0 + 30.0 * ep.u) if ep is not None else 0.0
        values["ppm"] = trace + (level * (5.0 + 35.0 * ep.v) if ep is not None else 0.0)


class Valve:
    """An emergency shut-off valve (阀门, normally open) and an outlet gate (闸门, normally closed):
    the valve closes and the gate opens, each for 10 min to 2 h, a few times a day. 1 = open."""

    def __init__(self, spec: DeviceDef, noise: random.Random, events: random.Random) -> None:
        self.valve_closed = Episodes(events, _events(spec), 600.0, 7200.0)
        self.gate_open = Episodes(random.Random(events.random()), _events(spec), 600.0, 7200.0)

    def step(self, values: Values, t_s: float, dt_s: float, activity: float) -> None:
        values["valve"] = 0.0 if self.valve_closed.at(t_s)[1] is not None else 1.0
        values["gate"] = 1.0 if self.gate_open.at(t_s)[1] is not None else 0.0


class FireAlarm:
    """A fire alarm panel zone (火灾报警): alarm for 2-20 min at ``events_per_day`` (very rare by
    default); a controller fault (故障) about once in ten days, for 30 min to 4 h."""

    def __init__(self, spec: DeviceDef, noise: random.Random, events: random.Random) -> None:
        self.alarms = Episodes(events, _events(spec), 120.0, 1200.0)
        self.faults = Episodes(random.Random(events.random()), 0.1, 1800.0, 4 * 3600.0)

    def step(self, values: Values, t_s: float, dt_s: float, activity: float) -> None:
        values["alarm"] = 1.0 if self.alarms.at(t_s)[1] is not None else 0.0
        values["fault"] = 1.0 if self.faults.at(t_s)[1] is not None else 0.0


class Wastewater:
    """A wastewater outlet monitoring station (污水排放口): flow follows the enterprise's activity;
    concentrations carry smooth noise around pretreated effluent values; an exceedance (30-90 min)
    raises one pollutant up to ×4 or drives the pH to 5 or 10."""

    BASE: ClassVar[dict[str, float]] = {"cod": 180.0, "nh3n": 15.0, "tp": 1.5, "tn": 25.0}  # mg/L

    def __init__(self, spec: DeviceDef, flow_ls: float, noise: random.Random, events: random.Random) -> None:
        self.flow_ls = flow_ls
        self.flow_noise = AR1(noise, 1.0, 0.05, 600.0, 0.8, 1.2)
        self.noise = {k: AR1(noise, 1.0, 0.08, 1800.0, 0.7, 1.3) for k in self.BASE}
        self.ph = AR1(noise, 7.3, 0.15, 1800.0, 6.6, 8.0)
        self.exceedances = Episodes(events, _events(spec), 1800.0, 5400.0)

    def step(self, values: Values, t_s: float, dt_s: float, activity: float) -> None:
        level, ep = self.exceedances.at(t_s)
        what = (*self.BASE, "ph")[int(ep.u * 5)] if ep is not None else None
        values["flow"] = self.flow_ls * activity * self.flow_noise.step(dt_s)
        for k, base in self.BASE.items():
            values[k] = base * self.noise[k].step(dt_s) * (1.0 + 3.0 * level if what == k else 1.0)
        ph = self.ph.step(dt_s)
        if what == "ph" and ep is not None:
            ph += level * ((5.0 if ep.v < 0.5 else 10.0) - ph)
        values["ph"] = ph


def make(spec: DeviceDef, water_m3h: float, noise: random.Random, events: random.Random) -> ProcessDevice | None:
    """The model of a safety / wastewater device, or None for other kinds."""
    if spec.kind in Pressure.KINDS:
        return Pressure(spec, noise, events)
    if spec.kind == "gas_detector":
        return GasDetector(spec, noise, events)
    if spec.kind == "valve":
        return Valve(spec, noise, events)
    if spec.kind == "fire_alarm":
        return FireAlarm(spec, noise, events)
    if spec.kind == "wastewater":  # most of the water taken in leaves as wastewater: 80 %, m3/h -> L/s
        return Wastewater(spec, spec.flow_ls or 0.8 * water_m3h / 3.6, noise, events)
    return None
