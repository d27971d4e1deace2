"""Shapes of the simulated park: sun, clouds, wind, loads. Deterministic given the random streams."""

from __future__ import annotations

import math
import random
from datetime import datetime

from parkmon.common.clock import CHINA


def local_hour(sim_ms: int) -> float:
    t = datetime.fromtimestamp(sim_ms / 1000, tz=CHINA)
    return t.hour + t.minute / 60 + t.second / 3600


def clear_sky(sim_ms: int, latitude: float, longitude: float) -> float:
    """Fraction of PV capacity under a clear sky (0 at night), from the sun's elevation."""
    t = datetime.fromtimestamp(sim_ms / 1000, tz=CHINA)
    day = t.timetuple().tm_yday
    decl = math.radians(23.45) * math.sin(2 * math.pi * (284 + day) / 365)
    solar_hour = local_hour(sim_ms) + (longitude - 120.0) / 15.0  # Beijing time is set for 120°E
    h = math.radians(15.0 * (solar_hour - 12.0))
    lat = math.radians(latitude)
    sin_elev = math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(h)
    if sin_elev <= 0:
        return 0.0
    return float(0.85 * sin_elev**1.15)  # inverter and temperature losses keep the peak below nameplate


class AR1:
    """A mean-reverting random walk in simulated time: weather and noise that change smoothly."""

    def __init__(self, rng: random.Random, mean: float, sigma: float, tau_s: float, lo: float, hi: float) -> None:
        self.rng, self.mean, self.sigma, self.tau, self.lo, self.hi = rng, mean, sigma, tau_s, lo, hi
        self.x = mean

    def step(self, dt_s: float) -> float:
        a = math.exp(-dt_s / self.tau)
        self.x = self.mean + a * (self.x - self.mean) + self.sigma * math.sqrt(1 - a * a) * self.rng.gauss(0, 1)
        self.x = min(self.hi, max(self.lo, self.x))
        return self.x


def wind_power_fraction(speed: float) -> float:
    """A 3 MW-class turbine's power curve: cut-in 3 m/s, rated 12 m/s, cut-out 25 m/s."""
    if speed < 3.0 or speed >= 25.0:
        return 0.0
    if speed >= 12.0:
        return 1.0
    return (speed**3 - 27.0) / (12.0**3 - 27.0)


def load_shape(hour: float, shifts: str) -> float:
    """Multiplier on the enterprise's base load by hour of day."""
    if shifts == "flat":
        return 1.0
    if shifts == "day":  # one day shift 08-18 with a lunch dip; lights and standby at night
        if 8 <= hour < 18:
            return 0.75 if 12 <= hour < 13 else 1.0
        return 0.15
    # three shifts: a little lower at night
    return 0.85 + 0.15 * math.sin(math.pi * (hour - 6) / 12) if 6 <= hour < 18 else 0.85
