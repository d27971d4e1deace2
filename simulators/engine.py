"""The tick engine: simulated clock, faults, register images and ground-truth rows, no sockets.

Tick ``k`` is at simulated time ``sim_start + k * step`` and advances the model by one step, so the
same seed and step give the same values whatever the wall clock did; the runner only decides
*when* each tick happens. :func:`simulate` runs the engine flat out for tests and analytics
(a simulated day in well under a second) and writes the same ground truth a live park writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from edge_agent.config import PointConfig
from simulators.definition import ParkDef
from simulators.ground_truth import BalanceRow, GroundTruthWriter, Row
from simulators.park import BALANCE_FIELDS, ParkModel
from simulators.registers import FC, device_image, profile_points

FaultKind = Literal["offline", "sentinel", "meter_reset"]
FAULTS: tuple[str, ...] = ("offline", "sentinel", "meter_reset")


@dataclass(frozen=True)
class RegisterWrite:
    """One device's whole table, written with one ``setValues`` so no poll sees half of it."""

    enterprise: str
    unit: int
    function_code: int
    words: list[int]


class TickEngine:
    def __init__(self, definition: dict[str, Any] | ParkDef, seed: int, step_s: float, sim_start_ms: int) -> None:
        if step_s <= 0:
            raise ValueError(f"simulated step must be > 0 s, got {step_s}; raise speed or tick_s")
        self.model = ParkModel(definition, seed)
        self.seed, self.step_s, self.sim_start_ms = seed, step_s, sim_start_ms
        self.points: dict[tuple[str, str], list[PointConfig]] = {
            (e.key, d.id): profile_points(d.profile) for e in self.model.enterprises for d in e.devices}
        self.faults: dict[tuple[str, str], str] = {}
        self.next_tick = 0
        self.sim_ms = sim_start_ms

    def sim_ms_of(self, k: int) -> int:
        return self.sim_start_ms + round(k * self.step_s * 1000)

    def set_fault(self, enterprise: str, device: str, kind: str | None) -> None:
        """Inject (or with ``None`` clear) a fault; ``meter_reset`` happens once, at the next tick."""
        d = self.model.find(enterprise, device)  # KeyError naming what exists
        if kind is None:
            self.faults.pop((enterprise, device), None)
            return
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; faults: {', '.join(FAULTS)}")
        if kind == "sentinel" and not any(p.sentinels for p in self.points[(enterprise, device)]):
            raise ValueError(f"{enterprise}/{device}: profile {d.profile} defines no sentinel values, so a "
                             "sentinel fault would change nothing; use offline or meter_reset")
        self.faults[(enterprise, device)] = kind

    def tick(self, wall_ms: int) -> tuple[list[RegisterWrite], list[Row], list[BalanceRow]]:
        """Advance one step; returns the register writes and the ground-truth rows of this tick."""
        k = self.next_tick
        self.next_tick += 1
        prev, self.sim_ms = self.sim_ms, self.sim_ms_of(k)
        dt_s = (self.sim_ms - prev) / 1000.0  # 0 at tick 0: powers set, counters unchanged
        for (ent, dev), kind in list(self.faults.items()):
            if kind == "meter_reset":
                self.model.reset_counters(ent, dev)
                del self.faults[(ent, dev)]
        self.model.step(self.sim_ms, dt_s)
        writes: list[RegisterWrite] = []
        rows: list[Row] = []
        balances: list[BalanceRow] = []
        for e in self.model.enterprises:
            for d in e.devices:
                fault = self.faults.get((e.key, d.id))
                images, rep = device_image(self.points[(e.key, d.id)], d.values, sentinel=fault == "sentinel")
                writes += [RegisterWrite(e.key, d.unit, FC[t], words) for t, words in images.items()]
                rows += [(wall_ms, self.sim_ms, e.key, d.id, name, d.values[name], r, fault)
                         for name, r in rep.items()]
            balances.append((wall_ms, self.sim_ms, dt_s, e.key, *(e.last_balance[f] for f in BALANCE_FIELDS)))
        return writes, rows, balances

    def run_info(self, **extra: Any) -> dict[str, Any]:
        return {"seed": self.seed, "step_s": self.step_s, "sim_start_ms": self.sim_start_ms,
                "definition": self.model.spec.model_dump(), **extra}


def simulate(definition: dict[str, Any] | ParkDef, seed: int, sim_start_ms: int, step_s: float, steps: int,
             ground_truth_path: str | Path) -> TickEngine:
    """Run ``steps`` ticks without servers; wall_ms in the log is the simulated time (no wall clock)."""
    engine = TickEngine(definition, seed, step_s, sim_start_ms)
    gt = GroundTruthWriter(ground_truth_path, engine.run_info(mode="offline"))
    try:
        for k in range(steps):
            _, rows, balances = engine.tick(engine.sim_ms_of(k))
            gt.write(rows, balances)
    finally:
        gt.close()
    return engine
