"""End to end on real components: simulated park (pymodbus) -> edge agents -> mosquitto -> ingest ->
PostgreSQL -> new-energy share; compared with the simulator's own ground truth."""

from __future__ import annotations

import asyncio
import threading
from bisect import bisect_right
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from analytics.counters import Reading, edges, interval_energy
from analytics.factors import load_factors
from analytics.indicators.comprehensive_energy import CARRIERS, EnergyUse, compute, compute_energy
from analytics.indicators.new_energy_share import compute_park_share, compute_share
from analytics.meters import pooled_flows
from analytics.targets import load_share_settings
from edge_agent.agent import Agent
from edge_agent.config import parse_config
from ingest.mqtt.broker import Mosquitto
from ingest.mqtt.config import IngestConfig
from ingest.mqtt.consumer import Ingestor
from ingest.store import Store, open_store
from parkmon.common.clock import CHINA
from simulators.ground_truth import GroundTruth
from simulators.park import PROFILES
from simulators.registers import profile_points
from simulators.runner import ThreadedPark, start_in_thread
from tests.mqtt_util import wait_for

SPEED = 600.0  # a simulated hour every 6 s
RUN_S = 24.0  # four simulated hours: the afternoon PV ramp-down into the evening battery discharge
# Agents poll every 0.25 s (2.5 simulated minutes), as often as the meters update. Energy over a
# window is exact in the middle and uncertain at its two edges by up to one poll's worth, as with any
# sampled meter: over this ~40-poll-interval window that is ~1 % of an energy total, and less on the
# share, where the errors of numerator and denominator largely cancel.
POLL_S = 0.25
SHARE_TOLERANCE = 0.01  # one percentage point
ENERGY_TOLERANCE = 0.02  # 2 % of the window's consumption


class RunningAgents:
    """The enterprises' edge agents on one event loop in a thread (the demo runs them as processes)."""

    def __init__(self, configs: list[dict[str, object]]) -> None:
        self.agents = [Agent(parse_config(c)) for c in configs]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            await asyncio.gather(*(a.run() for a in self.agents))

        self._loop.run_until_complete(main())

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._loop.is_closed():  # stopped already (a test may stop them before its fixture does)
            return
        for a in self.agents:
            self._loop.call_soon_threadsafe(a.stop)
        self._thread.join(30)
        self._loop.close()


@pytest.fixture
def park_run(tmp_path: Path, mosquitto: Mosquitto, pg_url: str) -> Iterator[tuple[ThreadedPark, Store, Path]]:
    gt_path = tmp_path / "ground_truth.db"
    # 15:00 China time on 2025-06-21: sun going down, batteries about to discharge
    sim = start_in_thread(seed=7, speed=SPEED, ground_truth_path=str(gt_path), tick_s=0.25,
                          sim_start_ms=1_750_489_200_000)
    store = open_store(pg_url)
    store.create_schema()
    info = sim.park_info()
    store.upsert_park(info["key"], info["name_zh"], info["name_en"], info["park_class"], info["region"])
    ingest = Ingestor(IngestConfig(mqtt_port=mosquitto.port, db_url=pg_url, max_wait_ms=20), store)
    ingest.start()
    configs = sim.edge_configs("127.0.0.1", mosquitto.port, str(tmp_path / "buffers"), poll_interval_s=POLL_S)
    for c in configs.values():
        c["publish"] = {"interval_s": 0.25}
    agents = RunningAgents(list(configs.values()))
    agents.start()
    try:
        threading.Event().wait(RUN_S)
        agents.stop()  # flushes every polled sample to disk and the broker before it returns
        sim.stop()
        expected = sum(a.health[d.id].polls * len(d.points) for a in agents.agents for d in a.cfg.devices)
        wait_for(lambda: store.count_readings() == expected, timeout=30, what=f"{expected} readings stored")
        yield sim, store, gt_path
    finally:
        ingest.stop()
        store.close()
        sim.stop()


def _metric_of() -> dict[tuple[str, str], str]:
    """(device kind, point) -> metric, from the register maps the devices publish."""
    return {(kind, p.name): p.metric for kind, prof in PROFILES.items() for p in profile_points(prof)}


@pytest.mark.e2e
def test_park_end_to_end_matches_ground_truth(park_run: tuple[ThreadedPark, Store, Path]) -> None:
    sim, store, gt_path = park_run
    gt = GroundTruth(gt_path)
    kinds = {(e.key, d.id): d.kind for e in sim.park.model.enterprises for d in e.devices}
    metric_of = _metric_of()
    pts = store.points("demo")
    assert len(pts) == sum(len(profile_points(PROFILES[k])) for k in kinds.values())
    assert all(p.metric is not None for p in pts), "every point got its metric from the gateway catalogue"

    # 1. every stored reading is what the meter held (the last tick before the read, or the one before
    #    it when a tick landed between the device answering and the agent stamping the sample)
    series = store.readings([p.id for p in pts], 0, 2**62)
    checked = 0
    for p in pts:
        ticks = gt.values(p.enterprise, p.device, p.point)
        stamps = [t for t, _, _ in ticks]
        for ts, value, q in series[p.id]:
            assert q == 0, f"{p.key} at {ts}: quality {q}"
            i = bisect_right(stamps, ts)
            held = {ticks[j][2] for j in (i - 1, i - 2) if j >= 0}
            assert any(value == pytest.approx(h, rel=1e-9, abs=1e-9) for h in held if h is not None), (
                f"{p.key} at {ts}: stored {value}, the meter held {sorted(h for h in held if h is not None)}")
            checked += 1
    assert checked > 2000

    # 2. the share from stored data equals the share from the ground truth over the same window
    lo, hi = gt.span()
    start, end = lo + 2000, hi - 2000
    step = 2000  # 2 s of wall time = 20 simulated minutes: storage and export attributed per interval
    settings = load_share_settings()
    stored = compute_park_share(store, "demo", start, end, settings, interval_ms=step)
    truth_series: dict[str, list[list[Reading]]] = {}
    for (ent, dev), kind in kinds.items():
        for _kind, point in [k for k in metric_of if k[0] == kind]:
            readings = [(t, v, 0) for t, v, _ in gt.values(ent, dev, point)]
            truth_series.setdefault(metric_of[(kind, point)], []).append(readings)
    flows, _ = pooled_flows(truth_series, edges(start, end, step), settings.max_hold_minutes * 60_000)
    truth = compute_share(flows)
    assert stored.completeness == 1.0
    assert truth.share is not None and stored.value is not None
    assert stored.value == pytest.approx(truth.share, abs=SHARE_TOLERANCE)
    assert stored.inputs["consumption"] == pytest.approx(truth.consumption, rel=ENERGY_TOLERANCE), {
        k: (stored.inputs[k], round(getattr(truth, k), 3)) for k in ("imp", "exp", "re_gen", "charge", "discharge")}
    assert stored.inputs["discharge"] > 0, "the window should include the evening battery discharge"
    assert stored.target == pytest.approx(0.8) and stored.status in ("met", "below_target")
    # 3. comprehensive energy (tce) and CO2 per tce from stored data equal the ground truth's
    tce, carbon = compute_energy(store, "demo", start, end)
    totals = {}
    for field_, metrics in CARRIERS.items():
        series = [s for m in metrics for s in truth_series.get(m, [])]
        amounts = [interval_energy(s, [start, end], settings.max_hold_minutes * 60_000)[0][0] for s in series]
        totals[field_] = sum(a for a in amounts if a is not None)
    year = datetime.fromtimestamp(start / 1000, tz=CHINA).year
    truth_energy = compute(EnergyUse(**totals), load_factors(), year=year, area="内蒙古")
    assert tce.value is not None and tce.inputs["use"]["grid_import_kwh"] > 0
    assert tce.value == pytest.approx(truth_energy.tce, rel=ENERGY_TOLERANCE)
    assert carbon.value == pytest.approx(truth_energy.co2_per_tce, rel=ENERGY_TOLERANCE)
    # every batch every gateway sent arrived (seq has no holes)
    for c in store.completeness("demo", 0, 2**62):
        assert c.received == c.expected, c
