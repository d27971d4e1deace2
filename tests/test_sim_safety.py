"""Safety (安全应急管理) and wastewater (环境保护监测) devices of the simulated chemical park, read by the
real edge agent over Modbus: registers, coils and discrete inputs, excursions, and bad definitions."""

from __future__ import annotations

import copy
import itertools
import json
import random
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge_agent.config import PointConfig
from parkmon.common import quality
from parkmon.common.quality import Reason
from simulators.definition import KIND_VALUES, DefinitionError, parse_definition
from simulators.engine import simulate
from simulators.ground_truth import GroundTruth
from simulators.physics import CHINA
from simulators.registers import encode, profile_points
from simulators.runner import start_in_thread
from simulators.safety import Episodes, Wastewater

NEW_KINDS = ("pressure_vessel", "pipeline", "gas_detector", "valve", "fire_alarm", "wastewater")

# a chemical company with one of each new device, and a day-shift plant with a wastewater outlet
PARK: dict[str, Any] = {
    "park": {"key": "chem", "name_zh": "化工园区", "name_en": "Chemical park"},
    "enterprises": [
        {"key": "e02", "name": "示范化工", "load_kw": 2600, "water_m3h": 120, "devices": [
            {"id": "grid", "kind": "grid_meter", "unit": 1},
            {"id": "r101", "name": "R101反应釜", "kind": "pressure_vessel", "unit": 6, "design_pressure_mpa": 1.6},
            {"id": "pipe1", "name": "液氨管道", "kind": "pipeline", "unit": 7, "design_pressure_mpa": 4.0},
            {"id": "gd1", "name": "罐区气体探测器", "kind": "gas_detector", "unit": 8},
            {"id": "xv1", "name": "紧急切断阀/雨水闸门", "kind": "valve", "unit": 9},
            {"id": "fa1", "name": "罐区火灾报警", "kind": "fire_alarm", "unit": 10},
            {"id": "ww1", "name": "污水排放口", "kind": "wastewater", "unit": 11},
        ]},
        {"key": "e03", "name": "装备制造", "load_kw": 900, "shifts": "day", "water_m3h": 10, "devices": [
            {"id": "ww1", "name": "污水排放口", "kind": "wastewater", "unit": 3},
        ]},
    ],
}
DESIGN = {"r101": 1.6, "pipe1": 4.0}


def _park(**device_fields: dict[str, Any]) -> dict[str, Any]:
    """PARK with fields set on e02's devices: ``_park(fa1={"events_per_day": 5000})``."""
    doc = copy.deepcopy(PARK)
    for d in doc["enterprises"][0]["devices"]:
        d.update(device_fields.get(d["id"], {}))
    return doc


def _ms(hour: int) -> int:
    return int(datetime(2025, 6, 21, hour, 0, tzinfo=CHINA).timestamp() * 1000)


def _poll(config: dict[str, Any], tmp: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    """``parkmon edge poll -c gw.yaml --once``, as a site engineer runs it: exit code, samples by point."""
    path = tmp / f"{config['gateway']['id']}.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "parkmon.cli", "edge", "poll", "-c", str(path), "--once"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode in (0, 1), out.stderr
    samples = [json.loads(line) for line in out.stdout.splitlines()]
    return out.returncode, {s["point"]: s for s in samples}


def test_edge_agent_reads_every_value_the_simulator_holds_including_coils_and_discrete_inputs(
        tmp_path: Path) -> None:
    # fire alarms several times a minute, so the discrete input is 1 at the first tick; tick_s 60:
    # the registers hold the first tick while the agent polls
    with start_in_thread(_park(fa1={"events_per_day": 5000}), seed=4, speed=1.0, tick_s=60.0,
                         sim_start_ms=_ms(10), ground_truth_path=tmp_path / "gt.db") as sim:
        configs = sim.edge_configs("127.0.0.1", 1883, tmp_path / "buffers")
        info = sim.park_info()
        polled = {ent: _poll(cfg, tmp_path) for ent, cfg in configs.items()}
        sim.set_fault("e02", "fa1", "offline")  # the alarm panel stops answering; the rest do not
        offline_rc, offline = _poll(configs["e02"], tmp_path)
    gt = GroundTruth(tmp_path / "gt.db")

    checked: dict[str, list[float]] = {}
    for ent, (rc, samples) in polled.items():
        assert rc == 0, f"{ent}: a point came back bad: {samples}"
        for dev, d in info["devices"][ent].items():
            if d["kind"] not in NEW_KINDS:
                continue
            points = profile_points(d["profile"])
            assert {p.name for p in points} <= set(KIND_VALUES[d["kind"]])
            for p in points:
                [(_, exact, held)] = gt.values(ent, dev, p.name)
                got = samples.pop(f"{dev}.{p.name}")
                assert got["quality"] == quality.GOOD and got["value"] == held, (ent, dev, p.name, got, held)
                resolution = 0.0 if p.type == "bit" else p.scale if p.type != "float32" else abs(exact) * 1e-7
                assert abs(exact - got["value"]) <= resolution, f"{ent}/{dev}/{p.name}: register resolution"
                checked.setdefault(p.table, []).append(got["value"])
        assert set(samples) == ({"grid.import", "grid.export", "grid.power"} if ent == "e02" else set())
    # every new value of both enterprises, in all four tables, with bits both set and clear
    assert sum(map(len, checked.values())) == 2 + 2 + 2 + 2 + 2 + 6 + 6
    assert set(checked) == {"holding", "input", "coil", "discrete"}
    assert checked["discrete"][0] == 1.0, "the forced fire alarm is on (discrete input 0; 1 is the fault bit)"
    assert set(checked["coil"]) | set(checked["discrete"]) == {0.0, 1.0}
    # an offline unit answers nothing on its discrete inputs either; the other units still answer
    assert offline_rc == 1
    for bit in ("fa1.alarm", "fa1.fault"):
        got = offline.pop(bit)
        assert got["value"] is None and quality.reason(got["quality"]) == Reason.COMM_FAILURE, bit
    assert all(s["quality"] == quality.GOOD for s in offline.values()) and "xv1.valve" in offline


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> GroundTruth:
    """A simulated day at 1-minute steps, flat out; wastewater exceedances made frequent at e02."""
    path = tmp_path_factory.mktemp("day") / "gt.db"
    simulate(_park(ww1={"events_per_day": 8}), seed=5, sim_start_ms=_ms(0), step_s=60, steps=24 * 60 + 1,
             ground_truth_path=path)
    return GroundTruth(path)


def _series(gt: GroundTruth, ent: str, dev: str, point: str) -> list[float]:
    rows = gt.rows(ent, dev, point)
    assert len(rows) == 24 * 60 + 1, f"ground truth holds every tick of {ent}/{dev}/{point}"
    return [r[5] for r in rows]


def _episodes(flags: list[bool]) -> int:
    return sum(1 for i, f in enumerate(flags) if f and (i == 0 or not flags[i - 1]))


def test_pressure_rises_above_design_a_few_times_a_day(day: GroundTruth) -> None:
    for dev, design in DESIGN.items():
        pressure = _series(day, "e02", dev, "pressure")
        above = [p > design for p in pressure]
        assert 1 <= _episodes(above) <= 10, f"{dev}: excursions over design pressure in a day"
        assert sum(above) < 0.05 * len(pressure), f"{dev}: excursions are occasional"
        assert max(pressure) < 1.2 * design
        normal = sorted(pressure)[len(pressure) // 2]
        assert normal == pytest.approx(0.75 * design, rel=0.05), f"{dev}: operates at 75 % of design"
        temp = _series(day, "e02", dev, "temperature")
        hot = [t for t, a in zip(temp, above, strict=True) if a]
        assert sum(hot) / len(hot) > sum(temp) / len(temp) + 5, f"{dev}: an excursion is hot as well"


def test_gas_leaks_valve_moves_rare_alarms_and_wastewater(day: GroundTruth) -> None:
    lel, ppm = _series(day, "e02", "gd1", "lel"), _series(day, "e02", "gd1", "ppm")
    assert lel.count(0.0) > 0.9 * len(lel), "no combustible gas most of the time"
    assert 20 <= max(lel) <= 50 and 1 <= _episodes([v > 0 for v in lel]) <= 10
    assert max(ppm) > 5 and sorted(ppm)[len(ppm) // 2] < 1, "toxic gas: a trace, and the leaks"
    valve, gate = _series(day, "e02", "xv1", "valve"), _series(day, "e02", "xv1", "gate")
    assert set(valve) == set(gate) == {0.0, 1.0}
    assert sum(valve) > 0.5 * len(valve) > sum(gate), "the valve is normally open, the gate normally closed"
    for states in (valve, gate):
        assert 1 <= sum(a != b for a, b in itertools.pairwise(states)) <= 30
    assert set(_series(day, "e02", "fa1", "alarm")) == {0.0}, "a fire alarm is rare (default 0.01 a day)"

    # wastewater follows activity: the day-shift plant discharges far less at night
    flow = _series(day, "e03", "ww1", "flow")
    rows = day.rows("e03", "ww1", "flow")
    hours = [datetime.fromtimestamp(r[1] / 1000, tz=CHINA).hour for r in rows]
    night = [f for f, h in zip(flow, hours, strict=True) if h < 6]
    work = [f for f, h in zip(flow, hours, strict=True) if 9 <= h < 12]
    assert sum(work) / len(work) == pytest.approx(0.8 * 10 / 3.6, rel=0.1), "80 % of the water taken in"
    assert sum(night) / len(night) < 0.3 * sum(work) / len(work)
    # exceedances at e02 (8 a day here): one pollutant far over its usual level, or the pH out of 6-9
    conc = {k: _series(day, "e02", "ww1", k) for k in Wastewater.BASE}
    ph = _series(day, "e02", "ww1", "ph")
    over = [any(conc[k][i] > 2.5 * base for k, base in Wastewater.BASE.items()) or not 6 <= ph[i] <= 9
            for i in range(len(ph))]
    assert _episodes(over) >= 2 and sum(over) < 0.5 * len(over)
    usual = [all(0.6 * base < conc[k][i] < 1.4 * base for k, base in Wastewater.BASE.items()) and 6.5 <= ph[i] <= 8.2
             for i in range(len(ph))]
    # 8 exceedances of 30-90 min with their ramps: about a third of this day; the rest is usual
    assert 0.6 * len(usual) < sum(usual) < 0.95 * len(usual), "between exceedances, the usual levels"


def test_same_seed_same_values_and_episodes_do_not_depend_on_the_step(tmp_path: Path) -> None:
    def run(seed: int, name: str) -> list[tuple[Any, ...]]:
        simulate(PARK, seed, _ms(0), 300, 100, tmp_path / name)
        gt = GroundTruth(tmp_path / name)
        return [tuple(r) for e, d, p in gt.points() for r in gt.rows(e, d, p) if d != "grid"]

    assert run(3, "a.db") == run(3, "b.db")
    assert run(3, "a2.db") != run(4, "c.db")
    # the schedule of episodes is drawn in simulated time: the same at 10 s and at 60 s steps
    fine, coarse = Episodes(random.Random(7), 20, 30, 600), Episodes(random.Random(7), 20, 30, 600)
    t0 = _ms(0) / 1000
    at_fine = {k: fine.at(t0 + k * 10) for k in range(8640)}
    at_coarse = {k: coarse.at(t0 + k * 10) for k in range(0, 8640, 6)}
    assert all(at_fine[k] == v for k, v in at_coarse.items())
    assert 5 < _episodes([v[1] is not None for v in at_fine.values()]) < 40


def test_bad_safety_definitions_name_the_device_and_the_fix() -> None:
    doc = _park(pipe1={"operating_pressure_mpa": 4.5},
                gd1={"design_pressure_mpa": 1.0}, fa1={"profile": "sim_valve"})
    del doc["enterprises"][0]["devices"][1]["design_pressure_mpa"]
    doc["enterprises"][1]["water_m3h"] = 0  # e03: a wastewater outlet with nothing to follow
    doc["enterprises"].append(copy.deepcopy(doc["enterprises"][1]) | {"key": "e04"})
    doc["enterprises"][2]["devices"][0] |= {"profile": "sim_wastewater", "flow_ls": 5}
    with pytest.raises(DefinitionError) as err:
        parse_definition(doc, "chem.yaml")
    text = str(err.value)
    assert text.startswith("chem.yaml: 5 problem(s) in the park definition:"), text
    assert "enterprise 'e02', device 'r101'" in text and "kind pressure_vessel needs design_pressure_mpa" in text
    assert "device 'pipe1'" in text and "operating_pressure_mpa 4.5 must be below design_pressure_mpa 4" in text
    assert "device 'gd1'" in text and "design_pressure_mpa is for kinds pressure_vessel, pipeline, not gas_detector" \
        in text
    assert "device 'fa1'" in text and "profile sim_valve has points ['valve', 'gate']" in text
    assert "enterprise 'e03'" in text and "'ww1': a wastewater outlet needs flow_ls" in text
    assert "e04" not in text, "its own flow_ls is enough"


def test_simulator_writes_bits_only_to_coils_and_discrete_inputs() -> None:
    coil = PointConfig(name="v", metric="safety.valve_state", table="coil", address=3, type="bit")
    assert encode(coil, 1.0) == ([1], 1.0) and encode(coil, 0.0) == ([0], 0.0)
    in_register = PointConfig(name="v", metric="safety.valve_state", table="holding", address=3, type="bit", bit=2)
    with pytest.raises(ValueError, match="writes bits as coils or discrete inputs, not as bit 2 of a holding"):
        encode(in_register, 1.0)
