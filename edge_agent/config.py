"""Gateway configuration: checked on load, every error names the device and the point.

A config lists the gateway's identity, its broker, its disk buffer and its devices. A device
either lists its points or names a shipped ``profile`` (a register map from the maker's manual,
``edge_agent/profiles/<name>.yaml``) and may add or override points.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

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
UNKNOWN_DRIVER = "unknown_driver"  # the error type of a device whose driver is not in the registry


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
    """What every device has, whatever its driver. Each driver's module subclasses it with its own settings
    and rules (``edge_agent/drivers/<driver>.py``); the registry ``edge_agent.drivers.base.DRIVERS`` turns the
    subclasses into the discriminated union on ``driver`` that a config's devices are validated against."""

    label: ClassVar[str] = ""  # one line for ``parkmon edge --help`` (English · 中文)
    pushes: ClassVar[bool] = False  # the device sends on its own (a logger dialling in), it is not polled

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    name: str = ""
    driver: str
    profile: str | None = None
    poll_interval_s: Annotated[float | None, Field(gt=0)] = None
    timeout_s: Annotated[float, Field(gt=0)] = 1.0
    points: list[PointConfig] = []

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        """``DeviceConfig.model_validate(raw)`` gives the model of the driver ``raw`` names, as a config's
        devices get; on a driver's own model it is pydantic's."""
        if cls is not DeviceConfig:
            return super().model_validate(obj, **kwargs)
        from edge_agent.drivers.base import device_adapter

        device: Self = device_adapter().validate_python(obj, **kwargs)
        return device

    @model_validator(mode="after")
    def _checked(self) -> Self:
        self.check_driver()  # first: its message says more than "no points" about a half-written device
        if not self.points:
            raise ValueError("device has no points: list points or name a profile")
        seen: set[str] = set()
        for p in self.points:
            if p.name in seen:
                raise ValueError(f"point {p.name!r} appears twice")
            seen.add(p.name)
        return self

    def check_driver(self) -> None:
        """The driver's own rules (a ValueError says what to fix); the shared ones run after."""

    @property
    def link(self) -> str:
        """Where the device is reached, for log lines."""
        return f"driver {self.driver}"

    def describe(self, every_s: float) -> list[str]:
        """``parkmon edge check``'s lines for this device: a heading, then one line per point."""
        lines = [f"device {self.id} {self.name!r} {self.driver}: {len(self.points)} points every {every_s} s"]
        lines += [f"  {self.id}.{p.name:<14} {p.metric:<26} [{p.resolved_unit}] {p.label}" for p in self.points]
        return lines


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
    # end-to-end acks (docs/decisions/0010): a batch stays on disk until the platform says it is committed.
    # auto: as required once this buffer has had one confirmation; before that, after ack_fallback_s connected
    # without any, it deletes on the broker's PUBACK (an older platform), counted. off: PUBACK, as before.
    end_to_end_ack: Literal["auto", "required", "off"] = "auto"
    ack_timeout_s: Annotated[float, Field(gt=0)] = 30.0  # then a batch missing while later ones came is re-sent
    ack_fallback_s: Annotated[float, Field(gt=0)] = 600.0
    max_unacked: Annotated[int, Field(ge=1, le=100_000)] = 1000  # batches sent and not confirmed, at most


class BufferConfig(_Strict):
    path: str = "parkmon-buffer.db"
    max_mb: Annotated[float, Field(gt=0)] = 512.0
    # while the disk refuses writes, polled samples wait in memory up to this many (100-140 bytes each:
    # 100 000 is 10-14 MB, 20 s of 200 meters x 25 values a second); past it the oldest are dropped, counted
    max_memory_samples: Annotated[int, Field(ge=1)] = 100_000


class PublishConfig(_Strict):
    max_samples: Annotated[int, Field(ge=1, le=20000)] = 2000  # per MQTT message
    # no longer used: each poll's samples are written and published at once (issue 21); kept so configs load
    interval_s: Annotated[float, Field(gt=0)] = 1.0
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


def _device(raw: Any) -> DeviceConfig:
    """A device, validated by the model of the driver it names (the registry's union, as it is now)."""
    from edge_agent.drivers.base import device_adapter

    device: DeviceConfig = device_adapter().validate_python(raw)
    return device


class AgentConfig(_Strict):
    gateway: GatewayIdentity
    mqtt: MqttConfig = MqttConfig()
    buffer: BufferConfig = BufferConfig()
    publish: PublishConfig = PublishConfig()
    poll_interval_s: Annotated[float, Field(gt=0)] = 5.0
    devices: list[Annotated[SerializeAsAny[DeviceConfig], PlainValidator(_device)]]  # dumped as their driver's model
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
    """Expand ``profile:`` into points; the device's own points override the profile's by name."""
    if not (isinstance(dev, dict) and dev.get("profile")):
        return dev
    points = dev.get("points") or []
    if not isinstance(points, list):
        return dev  # points: 5 and the like: validation says what is wrong, naming the device
    named = [isinstance(p, dict) and isinstance(p.get("name"), str) for p in points]  # a list as name: unhashable
    own = {p["name"]: p for p, ok in zip(points, named, strict=True) if ok}
    merged = [{**p, **own.pop(p["name"], {})} for p in load_profile(str(dev["profile"]))]
    return {**dev, "points": merged + list(own.values()) + [p for p, ok in zip(points, named, strict=True) if not ok]}


def _problem(err: ErrorDetails) -> tuple[tuple[int | str, ...], str]:
    """Where and what, in the document's terms. An error inside a device carries the union's tag (the
    driver) after the device's index: dropped, so the place reads as before; an unknown driver is the
    ``driver`` field's problem; a setting the driver does not have says which drivers have it."""
    loc, msg = tuple(err["loc"]), err["msg"]
    if len(loc) < 2 or loc[0] != "devices" or not isinstance(loc[1], int):
        return loc, msg
    if err["type"] == UNKNOWN_DRIVER:
        return (*loc, "driver"), msg
    if len(loc) < 3:
        return loc, msg
    driver, loc = loc[2], (*loc[:2], *loc[3:])
    if err["type"] == "extra_forbidden" and len(loc) == 3:
        from edge_agent.drivers.base import drivers_with

        others = drivers_with(str(loc[2]))
        msg += f": driver {driver} has no such setting"
        if others:
            msg += f" (drivers that have it: {', '.join(others)})"
    return loc, msg


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
            loc, msg = _problem(err)
            lines.append(f"  - {_where(raw, loc)}: {msg}")
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
