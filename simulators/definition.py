"""The park definition: enterprises, their devices and the physical sizes the simulation needs.

A definition is YAML (``park_default.yaml`` is the shipped demo park). It is checked on load and
every error names the enterprise and device, so a hand-edited park fails with a fix, not a
``KeyError`` in the middle of a tick.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge_agent.config import load_profile
from parkmon.common.locate import describe_location
from parkmon.common.yamlfile import read_mapping

DEFAULT_PARK = Path(__file__).with_name("park_default.yaml")

Kind = Literal["grid_meter", "pv", "wind", "battery", "water_meter", "gas_meter", "steam_meter", "heat_meter",
               "it_meter", "cems",
               "pressure_vessel", "pipeline", "gas_detector", "valve", "fire_alarm", "wastewater"]

# device kind -> the register map it serves by default (edge_agent/profiles/<name>.yaml)
PROFILES: dict[str, str] = {
    "grid_meter": "sim_grid_meter", "pv": "sim_pv_inverter", "wind": "sim_wind_turbine",
    "battery": "sim_battery", "water_meter": "sim_water_meter", "gas_meter": "sim_gas_meter",
    "steam_meter": "sim_steam_meter", "heat_meter": "sim_heat_meter", "it_meter": "sim_it_meter",
    "cems": "sim_cems", "pressure_vessel": "sim_pressure_vessel", "pipeline": "sim_pipeline",
    "gas_detector": "sim_gas_detector", "valve": "sim_valve", "fire_alarm": "sim_fire_alarm",
    "wastewater": "sim_wastewater",
}

# the values the physics produces per kind; a profile may expose any subset of them
KIND_VALUES: dict[str, tuple[str, ...]] = {
    "grid_meter": ("import", "export", "power"),
    "pv": ("generation", "power", "curtailed"),
    "wind": ("generation", "power", "curtailed"),
    "battery": ("charge", "discharge", "power", "soc"),
    "water_meter": ("volume", "flow"),
    "gas_meter": ("volume",),
    "steam_meter": ("mass", "flow"),  # t, t/h
    "heat_meter": ("energy", "power"),  # GJ, GJ/h
    "it_meter": ("energy", "power"),  # a data centre's IT load (UPS output), kWh, kW
    "cems": ("so2", "nox", "particulate", "o2", "flow", "temperature"),
    "pressure_vessel": ("pressure", "temperature"),  # MPa, °C
    "pipeline": ("pressure", "temperature"),
    "gas_detector": ("lel", "ppm"),  # combustible %LEL, toxic (H2S) ppm
    "valve": ("valve", "gate"),  # 1 = open
    "fire_alarm": ("alarm", "fault"),  # 1 = alarm / controller fault
    "wastewater": ("flow", "cod", "nh3n", "ph", "tp", "tn"),  # L/s, mg/L, pH
}

PRESSURE_KINDS = ("pressure_vessel", "pipeline")
# kinds whose physics has random episodes (excursions, leaks, valve moves, alarms, exceedances)
EVENT_KINDS = ("pressure_vessel", "pipeline", "gas_detector", "valve", "fire_alarm", "wastewater")

# kinds that need a size, and which field holds it
_SIZES: dict[str, tuple[str, ...]] = {"pv": ("capacity_kw",), "wind": ("capacity_kw",),
                                      "battery": ("power_kw", "capacity_kwh"),
                                      "pressure_vessel": ("design_pressure_mpa",),
                                      "pipeline": ("design_pressure_mpa",)}
_HELP: dict[str, str] = {
    "design_pressure_mpa": "the design pressure in MPa (设计压力) that excursions rise above",
}
# fields that mean something for some kinds only; elsewhere they are a mistake
_ONLY_FOR: dict[str, tuple[str, ...]] = {
    "design_pressure_mpa": PRESSURE_KINDS, "operating_pressure_mpa": PRESSURE_KINDS,
    "operating_temperature_c": PRESSURE_KINDS, "events_per_day": EVENT_KINDS, "flow_ls": ("wastewater",),
}


class DefinitionError(ValueError):
    """The park definition is wrong; the message names the enterprise / device and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class DeviceDef(_Strict):
    id: _Id
    name: str = ""
    kind: Kind
    unit: Annotated[int, Field(ge=1, le=247)]
    profile: str | None = None  # defaults to PROFILES[kind]
    capacity_kw: Annotated[float | None, Field(gt=0)] = None  # PV / wind nameplate
    power_kw: Annotated[float | None, Field(gt=0)] = None  # battery converter limit
    capacity_kwh: Annotated[float | None, Field(gt=0)] = None  # battery energy
    design_pressure_mpa: Annotated[float | None, Field(gt=0)] = None  # pressure vessel / pipeline
    operating_pressure_mpa: Annotated[float | None, Field(gt=0)] = None  # default 75 % of design
    operating_temperature_c: Annotated[float | None, Field(ge=-200, le=1000)] = None  # default per kind
    # how often the kind's episode happens per simulated day: pressure excursions, gas leaks, valve and
    # gate moves, fire alarms, wastewater exceedances (default per kind, see simulators/safety.py)
    events_per_day: Annotated[float | None, Field(ge=0, le=86400)] = None
    flow_ls: Annotated[float | None, Field(gt=0)] = None  # wastewater mean outflow; default from water_m3h
    production: bool = False  # production equipment (the registry's digitalisation rate counts it)

    @property
    def profile_name(self) -> str:
        return self.profile or PROFILES[self.kind]

    @model_validator(mode="after")
    def _check(self) -> DeviceDef:
        for need in _SIZES.get(self.kind, ()):
            if getattr(self, need) is None:
                hint = f": {_HELP[need]}" if need in _HELP else ""
                raise ValueError(f"kind {self.kind} needs {need}{hint}")
        for name, kinds in _ONLY_FOR.items():
            if getattr(self, name) is not None and self.kind not in kinds:
                raise ValueError(f"{name} is for kinds {', '.join(kinds)}, not {self.kind}; remove it")
        if (self.operating_pressure_mpa is not None and self.design_pressure_mpa is not None
                and self.operating_pressure_mpa >= self.design_pressure_mpa):
            raise ValueError(f"operating_pressure_mpa {self.operating_pressure_mpa:g} must be below "
                             f"design_pressure_mpa {self.design_pressure_mpa:g} (excursions go above design)")
        try:
            points = load_profile(self.profile_name)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        unknown = [p["name"] for p in points if p["name"] not in KIND_VALUES[self.kind]]
        if unknown:
            raise ValueError(f"profile {self.profile_name} has points {unknown} that a simulated {self.kind} "
                             f"does not produce (it produces {', '.join(KIND_VALUES[self.kind])})")
        return self


class EnterpriseDef(_Strict):
    key: _Id
    name: str = ""
    load_kw: Annotated[float, Field(ge=0)]  # base load; the shift pattern shapes it
    shifts: Literal["three", "day", "flat"] = "three"
    export_limit_kw: Annotated[float, Field(ge=0)] = 0.0  # what the grid takes; the rest is curtailed
    water_m3h: Annotated[float, Field(ge=0)] = 0.0
    gas_m3h: Annotated[float, Field(ge=0)] = 0.0
    steam_th: Annotated[float, Field(ge=0)] = 0.0  # process steam bought from the park's utility, t/h
    heat_gjh: Annotated[float, Field(ge=0)] = 0.0  # heat (hot water) bought, GJ/h
    devices: list[DeviceDef]

    @model_validator(mode="after")
    def _unique(self) -> EnterpriseDef:
        ids, units = [d.id for d in self.devices], [str(d.unit) for d in self.devices]
        for what, seq in (("device id", ids), ("unit id", units)):
            dup = sorted({x for x in seq if seq.count(x) > 1})
            if dup:
                raise ValueError(f"{what} {', '.join(dup)} appears twice (one server per enterprise, "
                                 "so devices need distinct ids and unit ids)")
        for kind, need in (("steam_meter", "steam_th"), ("heat_meter", "heat_gjh")):
            if any(d.kind == kind for d in self.devices) and not getattr(self, need):
                raise ValueError(f"a {kind} needs the enterprise's {need} (its average use) to be above 0")
        for kind in ("grid_meter", "battery"):
            if sum(d.kind == kind for d in self.devices) > 1:
                raise ValueError(f"at most one {kind} per enterprise (the balance is per enterprise)")
        for d in self.devices:
            if d.kind == "wastewater" and d.flow_ls is None and self.water_m3h <= 0:
                raise ValueError(f"device {d.id!r}: a wastewater outlet needs flow_ls (mean outflow, L/s) "
                                 "or the enterprise's water_m3h, which its flow then follows")
        return self


class ParkInfo(_Strict):
    key: _Id
    name_zh: str
    name_en: str = ""
    park_class: Literal["zero_carbon", "low_carbon", "general"] = "zero_carbon"
    region: str = ""
    latitude: Annotated[float, Field(ge=-90, le=90)] = 41.0
    longitude: Annotated[float, Field(ge=-180, le=180)] = 111.0


class ParkDef(_Strict):
    park: ParkInfo
    enterprises: Annotated[list[EnterpriseDef], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> ParkDef:
        keys = [e.key for e in self.enterprises]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError(f"enterprise key {', '.join(dup)} appears twice")
        return self


def load_definition(path: str | Path | None = None) -> dict[str, Any]:
    """The raw definition (a dict, so callers can derive bigger parks from it); see :func:`parse_definition`."""
    p = Path(path or DEFAULT_PARK)
    doc = read_mapping(p, DefinitionError, "no such park definition; omit --park for the shipped demo park",
                       "'park' and 'enterprises'")
    parse_definition(doc, str(p))  # fail here, with the file name, rather than at start-up
    return doc


def _where(doc: Any, loc: tuple[int | str, ...]) -> str:
    return describe_location(doc, loc, {"enterprises": ("enterprise", "key"), "devices": ("device", "id")})


def parse_definition(doc: dict[str, Any] | ParkDef, source: str = "<park>") -> ParkDef:
    if isinstance(doc, ParkDef):
        return doc
    try:
        return ParkDef.model_validate(doc)
    except ValidationError as exc:
        lines = [f"{source}: {len(exc.errors())} problem(s) in the park definition:"]
        lines += [f"  - {_where(doc, tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise DefinitionError("\n".join(lines)) from None
