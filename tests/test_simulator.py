"""The simulated park: deterministic, physically consistent, and served over real Modbus TCP."""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pymodbus.client import AsyncModbusTcpClient, ModbusTcpClient

from edge_agent.config import load_config, parse_config
from simulators.definition import DefinitionError, load_definition
from simulators.engine import simulate
from simulators.ground_truth import GroundTruth
from simulators.park import SOC_MAX, SOC_MIN
from simulators.physics import CHINA
from simulators.registers import profile_points, table_sizes
from simulators.runner import SimulatedPark, ThreadedPark, start_in_thread

DT = ModbusTcpClient.DATATYPE
TYPES = {"int16": DT.INT16, "uint16": DT.UINT16, "int32": DT.INT32, "uint32": DT.UINT32, "float32": DT.FLOAT32}


def _ms(hour: int, day: int = 21) -> int:
    return int(datetime(2025, 6, day, hour, 0, tzinfo=CHINA).timestamp() * 1000)


def _local_hour(sim_ms: float) -> float:
    t = datetime.fromtimestamp(sim_ms / 1000, tz=CHINA)
    return t.hour + t.minute / 60


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> GroundTruth:
    """A simulated midsummer day at 5-minute steps, through the same engine the live park ticks."""
    path = tmp_path_factory.mktemp("day") / "gt.db"
    simulate(load_definition(), seed=5, sim_start_ms=_ms(0), step_s=300, steps=24 * 12 + 1, ground_truth_path=path)
    return GroundTruth(path)


def _truth(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT sim_ms, enterprise, device, point, value, register_value FROM ticks "
                          "ORDER BY sim_ms, enterprise, device, point").fetchall()


def test_same_seed_same_ground_truth_live_or_offline(tmp_path: Path) -> None:
    # a live park at 3600x (3 simulated minutes per 50 ms tick) ...
    sim = start_in_thread(seed=11, speed=3600.0, tick_s=0.05, sim_start_ms=_ms(10),
                          ground_truth_path=tmp_path / "live.db")
    time.sleep(0.6)
    sim.stop()
    live = _truth(tmp_path / "live.db")
    ticks = len({r[0] for r in live})
    assert ticks >= 5
    # ... logs exactly what the engine computes flat out with the same seed and step
    simulate(load_definition(), 11, _ms(10), 180.0, ticks, tmp_path / "same.db")
    simulate(load_definition(), 12, _ms(10), 180.0, ticks, tmp_path / "other.db")
    assert live == _truth(tmp_path / "same.db")
    other = _truth(tmp_path / "other.db")
    assert len(other) == len(live) and other != live


def test_energy_balance_holds_every_tick_and_curtailment_is_not_generation(day: GroundTruth) -> None:
    curtailed_somewhere = False
    for ent in ("e01", "e02", "e03", "e04"):
        for b in day.balances(ent):
            supply = b["import"] + b["re"] + b["discharge"]
            use = b["load"] + b["export"] + b["charge"]
            assert supply == pytest.approx(use, abs=1e-6), (ent, b)
            assert min(b["curtail"], b["re"], b["import"], b["export"], b["charge"], b["discharge"]) >= 0
            assert not (b["import"] > 0 and b["export"] > 0), "a meter does not import and export at once"
            curtailed_somewhere |= b["curtail"] > 1.0
    assert curtailed_somewhere, "the default park should hit an export limit on a summer day"

    # totalisers integrate exactly what the balance says, and curtailment goes to its own counter
    balances = {b["sim_ms"]: b for b in day.balances("e02")}
    gen, cur = day.rows("e02", "wt1", "generation"), day.rows("e02", "wt1", "curtailed")
    imp = day.rows("e02", "grid", "import")
    for i in range(1, len(gen)):
        b = balances[gen[i][1]]
        dt_h = b["dt_s"] / 3600
        assert gen[i][5] - gen[i - 1][5] == pytest.approx(b["wind"] * dt_h, abs=1e-6)
        assert cur[i][5] - cur[i - 1][5] == pytest.approx(b["curtail"] * dt_h, abs=1e-6)
        assert imp[i][5] - imp[i - 1][5] == pytest.approx(b["import"] * dt_h, abs=1e-6)


def test_pv_is_zero_at_night_and_follows_the_sun(day: GroundTruth) -> None:
    rows = day.rows("e01", "pv1", "power")
    (e01,) = [e for e in load_definition()["enterprises"] if e["key"] == "e01"]
    cap = next(d["capacity_kw"] for d in e01["devices"] if d["id"] == "pv1")
    night = [r[5] for r in rows if _local_hour(r[1]) < 4 or _local_hour(r[1]) >= 21]
    midday = [r[5] for r in rows if 11 <= _local_hour(r[1]) < 14]
    assert len(night) > 80 and set(night) == {0.0}
    assert max(midday) > 0.5 * cap, "a PV plant at midsummer noon"
    assert max(r[5] for r in rows) <= cap


def test_battery_soc_stays_within_limits_and_follows_the_tariff(tmp_path: Path) -> None:
    for seed in (1, 2, 3):
        simulate(load_definition(), seed, _ms(0), 300, 24 * 12 + 1, tmp_path / f"{seed}.db")
        gt = GroundTruth(tmp_path / f"{seed}.db")
        for ent in ("e01", "e04"):
            bal = gt.balances(ent)
            socs = [b["soc"] for b in bal]
            assert min(socs) >= SOC_MIN - 1e-9 and max(socs) <= SOC_MAX + 1e-9, (seed, ent)
            at = {round(_local_hour(b["sim_ms"]), 2): b for b in bal}
            assert at[6.0]["soc"] == pytest.approx(50.0), "night valley tops the battery up to 50 % from the grid"
            assert at[6.0]["charge_re"] == 0.0
            evening = [b for b in bal if 18 <= _local_hour(b["sim_ms"]) < 22]
            assert sum(b["discharge"] for b in evening) > 0, "the battery discharges in the evening peak"
            assert all(b["discharge_re"] <= b["discharge"] + 1e-9 for b in bal)


def _decode(point: Any, table: list[int]) -> float:
    assert point.address is not None
    if point.type == "bit":  # coils and discrete inputs: one 0 / 1 per address
        return float(table[point.address])
    words = table[point.address : point.address + point.registers]
    raw = ModbusTcpClient.convert_from_registers(words, TYPES[point.type],
                                                 word_order="little" if point.order == "CDAB" else "big")
    assert isinstance(raw, int | float)
    return float(raw * point.scale + point.offset)


async def _read_tables(port: int, unit: int, sizes: dict[str, int]) -> dict[str, list[int]]:
    client = AsyncModbusTcpClient("127.0.0.1", port=port)
    await client.connect()
    try:
        hr = await client.read_holding_registers(0, count=sizes["holding"], device_id=unit)
        ir = await client.read_input_registers(0, count=sizes["input"], device_id=unit)
        co = await client.read_coils(0, count=sizes["coil"], device_id=unit)
        di = await client.read_discrete_inputs(0, count=sizes["discrete"], device_id=unit)
        assert not any(r.isError() for r in (hr, ir, co, di)), (port, unit, hr, ir, co, di)
        return {"holding": list(hr.registers), "input": list(ir.registers),
                "coil": [int(b) for b in co.bits[:sizes["coil"]]],
                "discrete": [int(b) for b in di.bits[:sizes["discrete"]]]}
    finally:
        client.close()


def test_registers_read_over_modbus_equal_the_ground_truth(tmp_path: Path) -> None:
    # tick_s 60: after the first tick the registers hold still while a plain pymodbus client reads them
    with start_in_thread(seed=9, speed=60.0, tick_s=60.0, sim_start_ms=_ms(13),
                         ground_truth_path=tmp_path / "gt.db") as sim:
        info = sim.park_info()
        images = {}
        for ent, devices in info["devices"].items():
            for dev, d in devices.items():
                pts = profile_points(d["profile"])
                sizes = table_sizes(pts)
                images[(ent, dev)] = (pts, asyncio.run(_read_tables(sim.ports[ent], d["unit"], sizes)))
    gt = GroundTruth(tmp_path / "gt.db")
    checked = 0
    for (ent, dev), (pts, tables) in images.items():
        for p in pts:
            [(_, exact, held)] = gt.values(ent, dev, p.name)
            assert held is not None
            assert _decode(p, tables[p.table]) == held, (ent, dev, p.name)
            step = p.scale if p.type != "float32" else abs(exact) * 1e-7 + 1e-30
            assert abs(exact - held) <= step, f"{ent}/{dev}/{p.name}: register resolution"
            checked += 1
    assert checked == sum(len(v[0]) for v in images.values()) == 82
    # the grid meter's power is CDAB (low word first): reading it ABCD would give another number
    pts, tables = images[("e01", "grid")]
    power = next(p for p in pts if p.name == "power")
    assert power.order == "CDAB" and _decode(power.model_copy(update={"order": "ABCD"}), tables["holding"]) != \
        _decode(power, tables["holding"])


def _read(port: int, unit: int, address: int, count: int, table: str = "holding") -> Any:
    with ModbusTcpClient("127.0.0.1", port=port, timeout=2) as client:
        fn = client.read_holding_registers if table == "holding" else client.read_input_registers
        return fn(address, count=count, device_id=unit)


def _next_ticks(sim: ThreadedPark, n: int = 2) -> None:
    t0 = sim.park.ticks
    deadline = time.monotonic() + 5
    while sim.park.ticks < t0 + n:
        assert time.monotonic() < deadline, "the park stopped ticking"
        time.sleep(0.01)


def test_faults_offline_sentinel_and_meter_reset(tmp_path: Path) -> None:
    with start_in_thread(seed=3, speed=600.0, tick_s=0.05, sim_start_ms=_ms(12),
                         ground_truth_path=tmp_path / "gt.db") as sim:
        port = sim.ports["e01"]
        # offline: the enterprise gateway answers "target device failed to respond"; other units still answer
        sim.set_fault("e01", "pv1", "offline")
        rr = _read(port, 2, 0, 6)
        assert rr.isError() and rr.exception_code == 0x0B
        assert not _read(port, 1, 0, 6).isError()
        sim.set_fault("e01", "pv1", None)
        assert not _read(port, 2, 0, 6).isError()

        # sentinel: the water meter's flow shows its profile's 0xFFFF; the volume stays a number
        sim.set_fault("e01", "water", "sentinel")
        _next_ticks(sim)
        regs = _read(port, 4, 0, 3, "input").registers
        assert regs[2] == 0xFFFF and regs[0:2] != [0xFFFF, 0xFFFF]
        sim.set_fault("e01", "water", None)
        _next_ticks(sim)
        assert _read(port, 4, 0, 3, "input").registers[2] != 0xFFFF

        # meter reset: the import totaliser starts again from zero
        before = ModbusTcpClient.convert_from_registers(_read(port, 1, 0, 2).registers, DT.UINT32)
        sim.set_fault("e01", "grid", "meter_reset")
        _next_ticks(sim)
        after = ModbusTcpClient.convert_from_registers(_read(port, 1, 0, 2).registers, DT.UINT32)
        assert isinstance(before, int) and isinstance(after, int) and after < before / 100

        with pytest.raises(ValueError, match="offline, sentinel, meter_reset"):
            sim.set_fault("e01", "grid", "melted")
        with pytest.raises(ValueError, match="no sentinel values"):
            sim.set_fault("e01", "grid", "sentinel")
        with pytest.raises(KeyError, match="has no device 'nope'"):
            sim.set_fault("e01", "nope", "offline")
    flow = GroundTruth(tmp_path / "gt.db").rows("e01", "water", "flow")
    shown = [r for r in flow if r[7] == "sentinel"]
    assert shown and all(r[6] is None and r[5] > 0 for r in shown), "the truth keeps the real flow"


def test_speed_factor_scales_accrued_energy(tmp_path: Path) -> None:
    parks = [start_in_thread(seed=1, speed=s, tick_s=0.05, sim_start_ms=_ms(10),
                             ground_truth_path=tmp_path / f"{s}.db") for s in (1800.0, 3600.0)]
    time.sleep(1.0)
    for p in parks:
        p.stop()
    rates = []
    for speed in (1800.0, 3600.0):
        gt = GroundTruth(tmp_path / f"{speed}.db")
        vol, flow = gt.rows("e04", "water", "volume"), gt.rows("e04", "water", "flow")
        for i in range(1, len(vol)):  # each tick accrues flow x (tick_s x speed) simulated seconds
            assert vol[i][5] - vol[i - 1][5] == pytest.approx(flow[i][5] * 0.05 * speed / 3600, rel=1e-9)
        assert {b["dt_s"] for b in gt.balances("e04")[1:]} == {0.05 * speed}
        rates.append((vol[-1][5] - vol[0][5]) / (vol[-1][0] - vol[0][0]))  # m3 per wall ms
    assert rates[1] / rates[0] == pytest.approx(2.0, rel=0.15)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_thread_runner_and_async_context_stop_cleanly(tmp_path: Path) -> None:
    threads_before = set(threading.enumerate())
    sim = start_in_thread(seed=1, speed=600.0, tick_s=0.05)
    ports = list(sim.ports.values())
    assert len(ports) == 4 and all(_listening(p) for p in ports)
    sim.stop()
    sim.stop()  # twice is harmless
    assert not any(_listening(p) for p in ports)
    assert set(threading.enumerate()) == threads_before

    async def in_process() -> tuple[dict[str, int], set[asyncio.Task[Any]]]:
        async with SimulatedPark(None, 2, 600.0, None, None, tick_s=0.05) as park:
            await asyncio.sleep(0.2)
            assert park.ticks >= 3
            ports = dict(park.ports)
        return ports, asyncio.all_tasks() - {asyncio.current_task()}

    ports2, leftover = asyncio.run(in_process())
    assert leftover == set()
    assert not any(_listening(p) for p in ports2.values())


def test_busy_port_is_reported_with_the_enterprise() -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        base = blocker.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"enterprise e01: cannot listen on 127.0.0.1:{base}"):
            start_in_thread(seed=1, port_base=base)


def test_edge_configs_validate_and_point_at_the_servers(tmp_path: Path) -> None:
    with start_in_thread(seed=1, speed=60.0, tick_s=1.0) as sim:
        configs = sim.edge_configs("127.0.0.1", 1883, tmp_path / "buffers")
        info = sim.park_info()
        ports = sim.ports
    assert (info["key"], info["name_zh"], info["name_en"], info["park_class"]) == (
        "demo", "示范零碳产业园", "Demo zero-carbon industrial park", "zero_carbon")
    assert sorted(configs) == sorted(info["enterprises"]) == ["e01", "e02", "e03", "e04"]
    for ent, raw in configs.items():
        cfg = parse_config(raw, f"gateway {ent}")
        assert (cfg.gateway.park, cfg.gateway.enterprise, cfg.gateway.id) == ("demo", ent, f"gw-{ent}")
        assert {d.port for d in cfg.devices} == {ports[ent]}
        assert sorted(d.unit for d in cfg.devices) == sorted(d["unit"] for d in info["devices"][ent].values())
        assert all(d.points for d in cfg.devices)


def test_bad_definition_names_the_enterprise_and_device(tmp_path: Path) -> None:
    doc = load_definition()
    doc["enterprises"][1]["devices"][1]["unit"] = 1  # e02: wt1 on the grid meter's unit id
    del doc["enterprises"][0]["devices"][2]["capacity_kwh"]  # e01: battery without its energy
    path = tmp_path / "park.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(DefinitionError) as err:
        load_definition(path)
    text = str(err.value)
    assert "enterprise 'e02'" in text and "unit id 1 appears twice" in text
    assert "enterprise 'e01', device 'bess'" in text and "needs capacity_kwh" in text


@pytest.fixture
def cli_park(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    proc = subprocess.Popen([sys.executable, "-m", "parkmon.cli", "sim", "run", "--port-base", "0", "--speed", "600",
                             "--write-edge-configs", str(tmp_path / "gw"), "--mqtt-port", "18830",
                             "--ground-truth", str(tmp_path / "gt.db")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield proc, tmp_path
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_cli_serves_writes_configs_and_stops_on_sigterm(cli_park: tuple[subprocess.Popen[str], Path]) -> None:
    proc, tmp = cli_park
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.strip() == "ready":
            break
    ports = [int(line.rsplit(":", 1)[1]) for line in lines if "modbus tcp" in line]
    assert len(ports) == 4 and all(_listening(p) for p in ports)
    cfg = load_config(tmp / "gw" / "gateway-e02.yaml")
    assert cfg.mqtt.port == 18830 and cfg.devices[0].port == ports[1]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert GroundTruth(tmp / "gt.db").span()[1] > 0


def test_cli_help() -> None:
    from simulators.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0


def test_steam_follows_the_shifts_and_heat_the_night(tmp_path: Path) -> None:
    """Steam (t/h) and heat (GJ/h) meters: counters that grow by what the flow says, steam with the
    day-shift plant's activity, heat higher at night; a steam meter needs the enterprise's steam_th."""
    doc: dict[str, Any] = {"park": {"key": "p", "name_zh": "园区"}, "enterprises": [
        {"key": "e1", "load_kw": 500, "shifts": "day", "steam_th": 6, "heat_gjh": 2, "devices": [
            {"id": "steam", "kind": "steam_meter", "unit": 1}, {"id": "heat", "kind": "heat_meter", "unit": 2}]}]}
    simulate(doc, seed=3, sim_start_ms=_ms(0), step_s=60, steps=24 * 60 + 1, ground_truth_path=tmp_path / "gt.db")
    gt = GroundTruth(tmp_path / "gt.db")

    def series(dev: str, point: str) -> list[tuple[float, float]]:
        return [(_local_hour(r[1]), r[5]) for r in gt.rows("e1", dev, point)]

    flow = series("steam", "flow")
    work = [v for h, v in flow if 9 <= h < 12]
    night = [v for h, v in flow if h < 6]
    assert sum(work) / len(work) == pytest.approx(6, rel=0.1) and sum(night) / len(night) < 0.2 * 6
    mass = series("steam", "mass")
    # the counter grows by each tick's flow over the minute that ends at it
    assert mass[-1][1] - mass[0][1] == pytest.approx(sum(v for _h, v in flow[1:]) / 60, rel=1e-6)
    power = series("heat", "power")
    assert sum(v for h, v in power if h < 6) / 360 > 1.3 * sum(v for h, v in power if 10 <= h < 16) / 360
    doc["enterprises"][0]["steam_th"] = 0
    with pytest.raises(DefinitionError, match="steam_meter needs the enterprise's steam_th"):
        simulate(doc, seed=3, sim_start_ms=_ms(0), step_s=60, steps=2, ground_truth_path=tmp_path / "x.db")
