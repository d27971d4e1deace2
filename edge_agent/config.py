"""Gateway configuration: checked on load, every error names the device and the point.

A config lists the gateway's identity, its broker, its disk buffer and its devices. A device
either lists its points or names a shipped ``profile`` (a register map from the maker's manual,
``edge_agent/profiles/<name>.yaml``) and may add or override points.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from parkmon.common import metrics, wire
from parkmon.common.locate import describe_location
from parkmon.common.yamlfile import read_mapping

RegisterTable = Literal["holding", "input", "coil", "discrete"]
DataType = Literal[
    "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64", "string", "bit"
]
WordOrder = Literal["ABCD", "CDAB", "BADC", "DCBA"]

# registers each type occupies; string and bit are sized by the point
TYPE_REGISTERS: dict[str, int] = {
    "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2,
    "int64": 4, "uint64": 4, "float64": 4,
}

PROFILE_DIR = Path(__file__).parent / "profiles"


class ConfigError(ValueError):
    """The configuration is wrong; the message says where and how to fix it. Fatal at load."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PointConfig(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    metric: str
    label: str = ""  # human name shown on boards (e.g. "1#进线 正向有功")
    table: RegisterTable = "holding"
    address: Annotated[int | None, Field(ge=0, le=65535)] = None  # Modbus register / coil
    node_id: str | None = None  # OPC UA, e.g. "ns=2;s=Meter1.Power"
    di: Annotated[str | None, Field(pattern=r"^[0-9A-Fa-f]{8}$")] = None  # DL/T 645 data identifier
    type: DataType = "uint16"
    order: WordOrder = "ABCD"
    count: Annotated[int | None, Field(ge=1, le=125)] = None  # registers, only for string
    bit: Annotated[int | None, Field(ge=0, le=15)] = None  # bit of a register, for type bit
    scale: float = 1.0
    offset: float = 0.0
    # SunSpec-style scale factor: a signed int16 register (same table) holding a power of ten;
    # value = raw * 10**sf * scale + offset
    scale_factor_address: Annotated[int | None, Field(ge=0, le=65535)] = None
    unit: str | None = None  # defaults to the metric's unit
    sentinels: list[int] = []  # raw values that mean "no reading" (e.g. 0x8000, 0xFFFF)
    deadband: Annotated[float | None, Field(ge=0)] = None  # report by exception, absolute

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        try:
            metrics.get(v)
        except KeyError as exc:
            raise ValueError(str(exc.args[0])) from None
        return v

    @model_validator(mode="after")
    def _sizes(self) -> PointConfig:
        if self.type == "string" and self.count is None:
            raise ValueError("type string needs count (registers, 2 characters each)")
        if self.type != "string" and self.count is not None and self.count != self.registers:
            raise ValueError(f"{self.type.upper()} needs {self.registers} registers, count={self.count}")
        if self.table in ("coil", "discrete") and self.type != "bit":
            raise ValueError(f"table {self.table} holds single bits: type must be bit, not {self.type}")
        return self

    @property
    def span(self) -> tuple[int, int]:
        """[first, end) registers a read must cover: the value and its scale factor register."""
        assert self.address is not None, "Modbus points have an address (checked on load)"
        lo, hi = self.address, self.address + self.registers
        if self.scale_factor_address is not None:
            lo, hi = min(lo, self.scale_factor_address), max(hi, self.scale_factor_address + 1)
        return lo, hi

    @property
    def registers(self) -> int:
        if self.type == "string":
            return self.count or 1
        if self.type == "bit":
            return 1
        return TYPE_REGISTERS[self.type]

    @property
    def resolved_unit(self) -> str:
        return self.unit if self.unit is not None else metrics.get(self.metric).unit


class SerialConfig(_Strict):
    """An RS-485 line; every device on it with the same ``device`` shares it (multi-drop)."""

    device: str  # e.g. /dev/ttyUSB0
    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8


class DeviceConfig(_Strict):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    name: str = ""
    # modbus_tcp: Modbus TCP; modbus_rtu: RTU on a serial line; modbus_rtu_over_tcp: RTU frames
    # through a TCP serial server / 4G DTU (several unit ids behind one connection)
    # opcua: an OPC UA server (endpoint), subscriptions with polling as the fallback
    # dlt645: DL/T 645-2007 meters, on a serial line (serial) or through a TCP serial server (host/port)
    # hj212: HJ 212-2017 data loggers dial in to host:port (the gateway listens) and are told apart by mn
    driver: Literal["modbus_tcp", "modbus_rtu", "modbus_rtu_over_tcp", "opcua", "dlt645", "hj212"] = "modbus_tcp"
    mn: Annotated[str | None, Field(min_length=1, max_length=24)] = None  # HJ 212 logger id (MN)
    pw: Annotated[str | None, Field(min_length=1, max_length=6)] = None  # HJ 212 access password (PW)
    st: Literal["31", "32"] | None = None  # HJ 212 system: 31 flue gas (CEMS), 32 wastewater
    stale_after_s: Annotated[float, Field(gt=0)] = 300.0  # HJ 212: silence longer than this is a comm failure
    meter_address: Annotated[str | None, Field(pattern=r"^([0-9]{12}|[Aa]{12})$")] = None  # DL/T 645
    endpoint: str | None = None  # opc.tcp://host:4840/path
    opcua_mode: Literal["subscription", "poll"] = "subscription"
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 502
    serial: SerialConfig | None = None
    unit: Annotated[int, Field(ge=0, le=255)] = 1
    profile: str | None = None
    poll_interval_s: Annotated[float | None, Field(gt=0)] = None
    timeout_s: Annotated[float, Field(gt=0)] = 1.0
    max_block: Annotated[int, Field(ge=1, le=125)] = 125  # registers per request
    max_gap: Annotated[int, Field(ge=0, le=124)] = 8  # unused registers bridged when coalescing
    points: list[PointConfig] = []

    @model_validator(mode="after")
    def _unique(self) -> DeviceConfig:
        if self.driver == "modbus_rtu" and self.serial is None:
            raise ValueError("driver modbus_rtu needs serial: {device: /dev/ttyUSB0, baudrate: 9600, ...}")
        if self.driver not in ("modbus_rtu", "dlt645") and self.serial is not None:
            raise ValueError(f"serial settings are for drivers modbus_rtu and dlt645, not {self.driver}")
        if self.driver == "dlt645":
            from edge_agent.dlt645 import FORMATS

            if not self.meter_address:
                raise ValueError("driver dlt645 needs meter_address: the 12 digits on the meter's nameplate")
            for p in self.points:
                if p.di is None or int(p.di, 16) not in FORMATS:
                    known = ", ".join(f"{d:08X}" for d in FORMATS)
                    raise ValueError(f"point {p.name!r}: DL/T 645 points need a di parkmon can decode ({known})")
        elif self.driver == "hj212":
            from edge_agent.hj212.points import parse_point_name

            if not self.mn or not self.pw:
                raise ValueError("driver hj212 needs mn and pw: the data logger's MN and access password")
            for p in self.points:
                parse_point_name(p.name)
        elif self.driver == "opcua":
            if not self.endpoint:
                raise ValueError("driver opcua needs endpoint: opc.tcp://host:4840/...")
            missing = [p.name for p in self.points if not p.node_id]
            if missing:
                raise ValueError(f"OPC UA points need node_id (e.g. ns=2;s=Meter.Power): {', '.join(missing)}")
        else:
            missing = [p.name for p in self.points if p.address is None]
            if missing:
                raise ValueError(f"Modbus points need an address: {', '.join(missing)}")
        if not self.points:
            raise ValueError("device has no points: list points or name a profile")
        seen: set[str] = set()
        for p in self.points:
            if p.name in seen:
                raise ValueError(f"point {p.name!r} appears twice")
            seen.add(p.name)
        return self


class GatewayIdentity(_Strict):
    park: str
    enterprise: str
    id: str

    @field_validator("park", "enterprise", "id")
    @classmethod
    def _ids(cls, v: str) -> str:
        try:
            return wire.check_id("gateway identity", v)
        except wire.ContractError as exc:
            raise ValueError(str(exc)) from None


class TlsConfig(_Strict):
    ca_file: str
    cert_file: str | None = None
    key_file: str | None = None


class MqttConfig(_Strict):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    username: str | None = None
    password: str | None = None
    tls: TlsConfig | None = None
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    max_inflight: Annotated[int, Field(ge=1, le=1000)] = 50


class BufferConfig(_Strict):
    path: str = "parkmon-buffer.db"
    max_mb: Annotated[float, Field(gt=0)] = 512.0


class PublishConfig(_Strict):
    max_samples: Annotated[int, Field(ge=1, le=20000)] = 2000  # per MQTT message
    interval_s: Annotated[float, Field(gt=0)] = 1.0  # how often pending samples become a batch
    heartbeat_s: Annotated[float, Field(gt=0)] = 300.0  # a point with a deadband is still sent this often
    health_interval_s: Annotated[float, Field(gt=0)] = 60.0  # the agent's own figures, to .../health


class UpstreamConfig(_Strict):
    """A regulator's HJ 212 platform this gateway reports one outlet to, as a data logger would."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")] = "regulator"
    host: str
    port: Annotated[int, Field(ge=1, le=65535)]
    mn: Annotated[str, Field(min_length=1, max_length=24)]  # assigned by the regulator
    pw: Annotated[str, Field(min_length=1, max_length=6)]
    st: Literal["31", "32"]
    device: str  # the outlet: an hj212 device (its logger's records go up) or a polled one (built here)
    periods: list[Literal["realtime", "minute", "hour", "day"]] = ["realtime", "minute", "hour", "day"]
    timeout_s: Annotated[float, Field(gt=0)] = 10.0  # the standard's default: 10 s × 3
    retries: Annotated[int, Field(ge=1, le=10)] = 3
    keep_days: Annotated[float, Field(gt=0)] = 30.0  # sent records kept for the platform's history requests


class AgentConfig(_Strict):
    gateway: GatewayIdentity
    mqtt: MqttConfig = MqttConfig()
    buffer: BufferConfig = BufferConfig()
    publish: PublishConfig = PublishConfig()
    poll_interval_s: Annotated[float, Field(gt=0)] = 5.0
    devices: list[DeviceConfig]
    hj212_upstream: list[UpstreamConfig] = []

    @model_validator(mode="after")
    def _unique_devices(self) -> AgentConfig:
        seen: set[str] = set()
        for d in self.devices:
            if d.id in seen:
                raise ValueError(f"device id {d.id!r} appears twice")
            seen.add(d.id)
        login, g = self.mqtt.username, self.gateway
        if login and login.count(".") == 2 and login != f"{g.park}.{g.enterprise}.{g.id}":
            # a login from `parkmon ingest mqtt-auth` may publish under its own park/enterprise/gateway only;
            # mosquitto would acknowledge every batch of another identity, drop it and disconnect
            raise ValueError(f"mqtt.username {login!r} is the broker login of gateway {login.replace('.', '/')}, "
                             f"but this gateway is {g.park}/{g.enterprise}/{g.id}: the broker would drop everything "
                             "it sends")
        names: set[str] = set()
        for u in self.hj212_upstream:
            if u.device not in seen:
                raise ValueError(f"hj212_upstream {u.name!r}: device {u.device!r} is not a device of this gateway")
            if u.name in names:
                raise ValueError(f"hj212_upstream name {u.name!r} appears twice")
            names.add(u.name)
        return self


def load_profile(name: str) -> list[dict[str, Any]]:
    path = PROFILE_DIR / f"{name}.yaml"
    # a name, not a path: "../../x" read any YAML file (KeyError), 300 characters failed the OS call (OSError)
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name) or not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.yaml")))
        raise ValueError(f"unknown profile {name!r}; shipped profiles: {known}")
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    points: list[dict[str, Any]] = doc["points"]
    return points


def _where(cfg: dict[str, Any], loc: tuple[int | str, ...]) -> str:
    return describe_location(cfg, loc, {"devices": ("device", "id"), "points": ("point", "name")})


def _apply_profile(dev: Any) -> Any:
    """Expand ``profile:`` into points; the device's own points override the profile's by name. An HJ 212
    device without points gets every point its system code reports (edge_agent/hj212/points.py)."""
    if isinstance(dev, dict) and dev.get("driver") == "hj212" and not dev.get("points") and not dev.get("profile"):
        from edge_agent.hj212.points import default_points

        return {**dev, "points": default_points(str(dev.get("st") or "31"))}
    if not (isinstance(dev, dict) and dev.get("profile")):
        return dev
    points = dev.get("points") or []
    if not isinstance(points, list):
        return dev  # points: 5 and the like: validation says what is wrong, naming the device
    named = [isinstance(p, dict) and isinstance(p.get("name"), str) for p in points]  # a list as name: unhashable
    own = {p["name"]: p for p, ok in zip(points, named, strict=True) if ok}
    merged = [{**p, **own.pop(p["name"], {})} for p in load_profile(str(dev["profile"]))]
    return {**dev, "points": merged + list(own.values()) + [p for p, ok in zip(points, named, strict=True) if not ok]}


def parse_config(raw: dict[str, Any], source: str = "<config>") -> AgentConfig:
    try:
        if isinstance(raw.get("devices"), list):
            raw = {**raw, "devices": [_apply_profile(d) for d in raw["devices"]]}
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    try:
        return AgentConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{source}: {len(exc.errors())} problem(s) in the gateway configuration:"]
        for err in exc.errors():
            where = _where(raw, tuple(err["loc"]))
            lines.append(f"  - {where}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from None


def load_config(path: str | Path) -> AgentConfig:
    try:
        raw = read_mapping(path, ConfigError, "no such file; pass the gateway config with -c FILE",
                           "gateway, mqtt and devices")
    except ConfigError:
        raise
    except UnicodeDecodeError as exc:  # read_mapping lets it through, e.g. for a file saved in GBK
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    except ValueError as exc:  # PyYAML's date constructor on a plain scalar like 2024-13-45
        raise ConfigError(f"{path}: not valid YAML: {exc} (a YYYY-MM-DD value is read as a date: quote it)") from None
    return parse_config(raw, str(path))
