"""The metric vocabulary shared by the edge and the server.

Every point names one metric from this table; the metric fixes its unit, its kind and the
smart-park system (六系统) it belongs to, so indicators and the scorecard can find their inputs
without knowing any device. Names are dotted ``system-ish.quantity[.qualifier]`` and stable: they
are stored in the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class System(StrEnum):
    """The six monitoring systems of 一平台两中心六系统."""

    ECONOMY = "economy"  # 经济运行监测
    ENERGY = "energy"  # 能源消耗监测
    SAFETY = "safety"  # 安全应急管理
    ENVIRONMENT = "environment"  # 环境保护监测
    LOGISTICS = "logistics"  # 交通物流监测
    SERVICES = "services"  # 综合服务


SYSTEM_LABELS: dict[System, tuple[str, str]] = {
    System.ECONOMY: ("经济运行监测", "Economic operation"),
    System.ENERGY: ("能源消耗监测", "Energy consumption"),
    System.SAFETY: ("安全应急管理", "Safety and emergency"),
    System.ENVIRONMENT: ("环境保护监测", "Environmental protection"),
    System.LOGISTICS: ("交通物流监测", "Traffic and logistics"),
    System.SERVICES: ("综合服务", "Comprehensive services"),
}


class Kind(StrEnum):
    INSTANT = "instant"  # a level or rate read at an instant (kW, mg/m3, MPa)
    COUNTER = "counter"  # a totaliser that only grows (kWh, m3): energy comes from differences
    STATE = "state"  # a discrete state (on/off, alarm)


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    unit: str
    kind: Kind
    system: System
    zh: str
    en: str


def _m(name: str, unit: str, kind: Kind, system: System, zh: str, en: str) -> Metric:
    return Metric(name, unit, kind, system, zh, en)


_C, _I, _S = Kind.COUNTER, Kind.INSTANT, Kind.STATE
_E, _V, _F = System.ENERGY, System.ENVIRONMENT, System.SAFETY

METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        # electricity at the park / enterprise boundary
        _m("elec.import.energy", "kWh", _C, _E, "电网购入电量", "Grid import energy"),
        _m("elec.export.energy", "kWh", _C, _E, "上网电量", "Grid export energy"),
        _m("elec.active_power", "kW", _I, _E, "有功功率", "Active power"),
        _m("elec.load.energy", "kWh", _C, _E, "用电量", "Consumption energy"),
        # a data centre's IT equipment (UPS output): PUE = facility energy / IT energy
        _m("elec.it.energy", "kWh", _C, _E, "IT设备用电量", "IT equipment energy"),
        _m("elec.it.power", "kW", _I, _E, "IT负载功率", "IT load power"),
        _m("elec.voltage", "V", _I, _E, "电压", "Voltage"),
        _m("elec.current", "A", _I, _E, "电流", "Current"),
        _m("elec.frequency", "Hz", _I, _E, "频率", "Frequency"),
        _m("elec.power_factor", "", _I, _E, "功率因数", "Power factor"),
        # on-site renewable generation (actual output at the inverter / turbine meter)
        _m("pv.generation.energy", "kWh", _C, _E, "光伏发电量", "PV generation"),
        _m("pv.power", "kW", _I, _E, "光伏功率", "PV power"),
        _m("pv.dc_power", "kW", _I, _E, "光伏直流功率", "PV DC power"),
        _m("device.state", "", _S, _E, "设备运行状态", "Device operating state"),
        _m("wind.generation.energy", "kWh", _C, _E, "风电发电量", "Wind generation"),
        _m("wind.power", "kW", _I, _E, "风电功率", "Wind power"),
        # curtailment: energy that could have been generated but was not. Never consumed.
        _m("re.curtailed.energy", "kWh", _C, _E, "弃风弃光电量", "Curtailed RE energy"),
        # storage
        _m("storage.charge.energy", "kWh", _C, _E, "储能充电量", "Storage charge energy"),
        _m("storage.discharge.energy", "kWh", _C, _E, "储能放电量", "Storage discharge energy"),
        _m("storage.power", "kW", _I, _E, "储能功率(放电为正)", "Storage power (+discharge)"),
        _m("storage.soc", "%", _I, _E, "储能荷电状态", "Storage state of charge"),
        # other energy carriers and water
        _m("gas.volume", "m3", _C, _E, "天然气用量", "Natural gas volume"),
        _m("steam.mass", "t", _C, _E, "蒸汽用量", "Steam mass"),
        _m("steam.flow", "t/h", _I, _E, "蒸汽流量", "Steam flow"),
        _m("heat.energy", "GJ", _C, _E, "热力用量", "Heat energy"),
        _m("heat.power", "GJ/h", _I, _E, "热功率", "Heat power"),
        _m("coal.mass", "t", _C, _E, "煤炭用量", "Coal mass"),
        _m("water.volume", "m3", _C, _E, "用水量", "Water volume"),
        _m("water.flow", "m3/h", _I, _E, "用水流量", "Water flow"),
        # the zero-carbon park's guiding indicators (analytics/indicators/zc_*.py): water reused (circulating
        # and recycled), waste heat / cold / pressure available and recovered (heat meters on both sides)
        _m("water.reuse.volume", "m3", _C, _E, "重复利用水量", "Reused water volume"),
        _m("heat.waste.energy", "GJ", _C, _E, "余热余冷余压资源量", "Waste heat/cold/pressure available"),
        _m("heat.recovered.energy", "GJ", _C, _E, "余热余冷余压回收利用量", "Waste heat/cold/pressure recovered"),
        # CEMS flue gas (HJ 212 a21026, a21002, a34013, a19001, a00000, a01012)
        _m("cems.so2", "mg/m3", _I, _V, "二氧化硫浓度", "SO2 concentration"),
        _m("cems.nox", "mg/m3", _I, _V, "氮氧化物浓度", "NOx concentration"),
        _m("cems.particulate", "mg/m3", _I, _V, "颗粒物浓度", "Particulate concentration"),
        _m("cems.o2", "%", _I, _V, "含氧量", "O2 content"),
        _m("cems.flow", "m3/s", _I, _V, "烟气流量", "Flue gas flow"),
        _m("cems.temperature", "°C", _I, _V, "烟气温度", "Flue gas temperature"),
        # wastewater outlet (HJ 212 w00000, w01018, w21003, w01001, w21011, w21001)
        _m("ww.flow", "L/s", _I, _V, "污水流量", "Wastewater flow"),
        _m("ww.cod", "mg/L", _I, _V, "化学需氧量", "COD"),
        _m("ww.nh3n", "mg/L", _I, _V, "氨氮", "NH3-N"),
        _m("ww.ph", "pH", _I, _V, "pH值", "pH"),
        _m("ww.tp", "mg/L", _I, _V, "总磷", "Total phosphorus"),
        _m("ww.tn", "mg/L", _I, _V, "总氮", "Total nitrogen"),
        # safety
        _m("safety.pressure", "MPa", _I, _F, "压力", "Pressure"),
        _m("safety.temperature", "°C", _I, _F, "温度", "Temperature"),
        _m("safety.gas_lel", "%LEL", _I, _F, "可燃气体浓度", "Combustible gas"),
        _m("safety.gas_ppm", "ppm", _I, _F, "有毒气体浓度", "Toxic gas"),
        _m("safety.valve_state", "", _S, _F, "阀门状态", "Valve state"),
        _m("safety.gate_state", "", _S, _F, "闸门状态", "Gate state"),
        _m("safety.fire_alarm", "", _S, _F, "火灾报警", "Fire alarm"),
        _m("safety.fire_fault", "", _S, _F, "火灾报警控制器故障", "Fire alarm panel fault"),
    )
}


def _hj212_records() -> list[Metric]:
    """What HJ 212 data loggers report beside the instant values (parkmon/common/hj212.py ``metric_of``): the
    value at the reference O2 (``cems.so2.ref``) and, per minute / hour / day record, the mean, least
    and greatest value, the same at the reference O2, and the amount emitted (``cems.so2.hour.amount``,
    kg; m³ for the flows). The period's start is the sample's time."""
    from parkmon.common.hj212_codes import CODE_METRICS

    periods = {"minute": ("分钟", "minute"), "hour": ("小时", "hourly"), "day": ("日", "daily")}
    stats = {"avg": ("均值", "mean"), "min": ("最小值", "min"), "max": ("最大值", "max")}
    ref = ("折算", "at reference O2")
    out = []
    for base_name in CODE_METRICS.values():
        b = METRICS[base_name]
        referable = b.unit == "mg/m3"  # flue-gas concentrations have a reference-O2 value
        amount_unit = {"m3/s": "m3", "L/s": "m3"}.get(b.unit, "kg" if b.unit in ("mg/m3", "mg/L") else "")
        if referable:
            out.append(_m(f"{base_name}.ref", b.unit, _I, b.system, f"{b.zh}({ref[0]})", f"{b.en} {ref[1]}"))
        for pk, (pzh, pen) in periods.items():
            for sk, (szh, sen) in stats.items():
                out.append(_m(f"{base_name}.{pk}.{sk}", b.unit, _I, b.system, f"{b.zh}{pzh}{szh}",
                              f"{b.en} {pen} {sen}"))
                if referable:
                    out.append(_m(f"{base_name}.{pk}.ref_{sk}", b.unit, _I, b.system,
                                  f"{b.zh}{pzh}{szh}({ref[0]})", f"{b.en} {pen} {sen} {ref[1]}"))
            if amount_unit:
                zh = "排放量" if amount_unit == "kg" else "累计流量"
                out.append(_m(f"{base_name}.{pk}.amount", amount_unit, _I, b.system, f"{b.zh}{pzh}{zh}",
                              f"{b.en} {pen} amount"))
    return out


METRICS.update({m.name: m for m in _hj212_records()})


def get(name: str) -> Metric:
    """Look a metric up; the error suggests the nearest names so a config typo is easy to fix."""
    try:
        return METRICS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, list(METRICS), n=8, cutoff=0.5) or \
            [n for n in METRICS if n.count(".") <= 2 and n.split(".")[0] == name.split(".")[0]][:12] or \
            sorted(n for n in METRICS if n.count(".") <= 1)[:12]
        raise KeyError(f"unknown metric {name!r}; known metrics like it: {', '.join(close)}") from None
