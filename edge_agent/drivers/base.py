"""The driver seam: one module per kind of device link, one line in ``DRIVERS`` (STYLE.md point 1).

A driver module holds its config model (a subclass of ``edge_agent.config.DeviceConfig`` with the
driver's own settings and rules) and its driver class, whose ``config`` names that model. The gateway's
config validates each device against the union of the registered models, told apart by ``driver``, so
``load_config``, ``parkmon edge check`` and its help pick a new driver up from its registry line alone.

A driver is built from its device config, opens its link in ``open()``, and ``read()`` returns one
sample per configured point: a device that does not answer gives bad-quality samples with a
reason, never an exception and never the last value re-sent as fresh. A driver module imports its
protocol library where the driver first needs it, so validating a config stays cheap on a gateway.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, ClassVar, Protocol, Union, get_args

from pydantic import Discriminator, Tag, TypeAdapter

from edge_agent.config import UNKNOWN_DRIVER, DeviceConfig
from parkmon.common.seams import resolve
from parkmon.common.wire import Sample as Sample  # (device.point, ts_ms, value, quality): the one Sample


class Driver(Protocol):
    config: ClassVar[type[DeviceConfig]]  # the device settings this driver takes

    @property
    def device(self) -> DeviceConfig: ...

    async def open(self) -> None: ...

    async def read(self) -> list[Sample]: ...

    async def close(self) -> None: ...


# name -> "module:Class"; a device config's ``driver`` is one of these names.
DRIVERS: dict[str, str] = {
    "modbus_tcp": "edge_agent.drivers.modbus:ModbusDriver",
    "modbus_rtu": "edge_agent.drivers.modbus:ModbusDriver",
    "modbus_rtu_over_tcp": "edge_agent.drivers.modbus:ModbusDriver",
    "opcua": "edge_agent.drivers.opcua:OpcUaDriver",
    "dlt645": "edge_agent.drivers.dlt645:Dlt645Driver",
    "hj212": "edge_agent.drivers.hj212:Hj212Driver",
    "iec104": "edge_agent.drivers.iec104.driver:Iec104Driver",
}
DEFAULT_DRIVER = "modbus_tcp"  # a device without ``driver:`` (the first configs had no other)


def config_model(name: str) -> type[DeviceConfig]:
    model: type[DeviceConfig] = resolve(DRIVERS[name]).config
    return model


def one_of(names: list[str]) -> str:
    """'a', 'b' or 'c': the words pydantic uses for a choice."""
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _tag(raw: Any) -> str:
    if isinstance(raw, DeviceConfig):
        return raw.driver
    driver = raw.get("driver", DEFAULT_DRIVER) if isinstance(raw, dict) else DEFAULT_DRIVER
    # anything else (a number, a list) is no driver's name: refused with the list of names
    return driver if isinstance(driver, str) else repr(driver)


@lru_cache(maxsize=8)
def _adapter(registry: tuple[tuple[str, str], ...]) -> TypeAdapter[Any]:
    choices: list[Any] = []
    for name, _target in registry:
        model = config_model(name)
        allowed = get_args(model.model_fields["driver"].annotation)
        if allowed and name not in allowed:  # a registry line the model's Literal forgot: say so at once
            raise TypeError(f"driver {name!r}: {model.__name__}.driver accepts {one_of(list(allowed))} only")
        choices.append(Annotated[model, Tag(name)])
    # the old flat model's words for a driver it did not know, so the message means what it meant
    unknown = f"Input should be {one_of([name for name, _ in registry])}"
    # built at run time from the registry, which a static type checker cannot follow: hence Any
    union: Any = Annotated[Union[tuple(choices)], Discriminator(  # noqa: UP007 (X | Y needs the members written out)
        _tag, custom_error_type=UNKNOWN_DRIVER, custom_error_message=unknown)]
    adapter: TypeAdapter[Any] = TypeAdapter(union)
    return adapter


def device_adapter() -> TypeAdapter[Any]:
    """The discriminated union of the registered drivers' config models, as the registry is now (a test
    may add a driver to ``DRIVERS``; the union is rebuilt when the registry changes)."""
    return _adapter(tuple(DRIVERS.items()))


def drivers_with(setting: str) -> list[str]:
    """The registered drivers whose devices take ``setting`` (for "not a setting of this driver")."""
    return [name for name in DRIVERS if setting in config_model(name).model_fields]


def describe_drivers() -> list[str]:
    """One line per driver model, its names first, for ``parkmon edge --help``."""
    names: dict[type[DeviceConfig], list[str]] = {}
    for name in DRIVERS:
        names.setdefault(config_model(name), []).append(name)
    return [f"{', '.join(n)}: {model.label}" if model.label else ", ".join(n) for model, n in names.items()]


def create_driver(device: DeviceConfig, shared: dict[object, Any] | None = None) -> Driver:
    """``shared`` is one agent's place for links several devices use (a serial line, a DTU)."""
    driver: Driver = resolve(DRIVERS[device.driver])(device, {} if shared is None else shared)
    return driver
