"""The simulated park: deterministic, physically consistent, and served over real Modbus TCP."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusTcpClient

from simulators.ground_truth import GroundTruth
from simulators.park import ParkModel, load_definition
from simulators.physics import CHINA
from simulators.registers import profile_points
from simulators.runner import PROFILES, start_in_thread


def _day(seed: int, step_s: int = 300) -> list[dict[str, dict[str, float]]]:
    """A simulated day at 5-minute steps: every enterprise's balance at every step."""
    m = ParkModel(load_definition(), seed)
    t0 = int(datetime(2025, 6, 21, 0, 0, tzinfo=CHINA).timestamp() * 1000)
    out = []
    for i in range(24 * 3600 // step_s):
        m.step(t0 + i * step_s * 1000, step_s)
        out.append({e.key: dict(e.last_balance) | {f"{d.id}.{k}": v for d in e.devices for k, v in d.values.items()}
                    for e in m.enterprises})
    return out


def test_same_seed_same_park_other_seed_other_weather() -> None:
    assert _day(3) == _day(3)
    assert _day(3) != _day(4)


def test_energy_balance_every_step_and_curtailment_outside_generation() -> None:
    for step in _day(5):
        for ent, b in step.items():
            supply = b["import"] + b["re"] + b["discharge"]
            use = b["load"] + b["export"] + b["charge"]
            assert supply == pytest.approx(use, abs=1e-6), (ent, b)
            assert b["curtail"] >= 0 and b["re"] >= 0


def test_pv_is_zero_at_night_and_battery_stays_within_limits() -> None:
    day = _day(6)
    midnight, noon = day[0], day[144]  # 00:05 and 12:05
    assert midnight["e01"]["pv1.power"] == 0.0
    assert noon["e01"]["pv1.power"] > 1000  # 5 MW plant at midsummer noon
    socs = [s["e01"]["bess.soc"] for s in day]
    assert min(socs) >= 10.0 - 1e-9 and max(socs) <= 95.0 + 1e-9
    assert max(socs) > 60, "the battery should charge from the midday surplus"


def test_registers_over_modbus_equal_the_ground_truth(tmp_path: Path) -> None:
    sim = start_in_thread(seed=9, speed=120.0, tick_s=60.0, ground_truth_path=str(tmp_path / "gt.db"))
    try:
        # tick_s 60: the registers hold still while we read them with a plain pymodbus client
        grid = profile_points(PROFILES["grid_meter"])

        async def read() -> list[int]:
            client = AsyncModbusTcpClient("127.0.0.1", port=sim.ports["e01"])
            await client.connect()
            rr = await client.read_holding_registers(0, count=6, device_id=1)
            client.close()
            return list(rr.registers)

        regs = asyncio.run(read())
    finally:
        sim.stop()
    gt = GroundTruth(tmp_path / "gt.db")
    values = {p: gt.values("e01", "grid", p)[-1] for p in ("import", "export", "power")}
    imp = AsyncModbusTcpClient.convert_from_registers(regs[0:2], AsyncModbusTcpClient.DATATYPE.UINT32)
    power = AsyncModbusTcpClient.convert_from_registers(regs[4:6], AsyncModbusTcpClient.DATATYPE.FLOAT32,
                                                        word_order="little")  # the profile says CDAB
    assert imp * grid[0].scale == pytest.approx(values["import"][2])
    assert power == pytest.approx(values["power"][2])
    assert abs(values["import"][1] - values["import"][2]) <= 0.005  # 0.01 kWh register resolution


def test_speed_factor_scales_simulated_time() -> None:
    slow = start_in_thread(seed=1, speed=60.0)
    fast = start_in_thread(seed=1, speed=600.0)
    try:
        asyncio.run(asyncio.sleep(1.5))
        s0, f0 = slow.park.sim_ms - slow.park.sim_start_ms, fast.park.sim_ms - fast.park.sim_start_ms
    finally:
        slow.stop()
        fast.stop()
    assert f0 > 5 * s0 > 0
