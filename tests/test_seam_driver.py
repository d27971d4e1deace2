"""The device-driver seam is one module plus one registry line (issue 19): a throw-away driver, written as a
single module in a temporary package and registered with one line in ``DRIVERS``, is taken by the gateway's
config, ``parkmon edge check`` / ``poll`` and the help, with no other edit. The assertions are what a site
engineer sees (exit codes, the words on the screen), written out here, not computed by the code under test."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.config import ConfigError, load_config
from edge_agent.drivers import base
from parkmon.cli import main as parkmon

# the whole driver: its config model next to its driver class, nothing else anywhere
DRIVER_MODULE = '''
"""A pressure gauge that always reads the pressure it is configured with (a test's throw-away driver)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from edge_agent.config import DeviceConfig
from parkmon.common.clock import now_ms


class GaugeConfig(DeviceConfig):
    label: ClassVar[str] = "fixed-reading pressure gauges, for tests (压力表, 仅测试)"

    driver: Literal["{name}"] = "{name}"
    reading: Annotated[float, Field(ge=0)]
    gauge_line: str = "/dev/ttyGAUGE0"

    def check_driver(self) -> None:
        if len(self.points) > 2:
            raise ValueError("a gauge has two points at most: pressure and its twin")


class GaugeDriver:
    config = GaugeConfig

    def __init__(self, device: GaugeConfig, shared: dict[object, Any]) -> None:
        self.device = device

    async def open(self) -> None:
        pass

    async def read(self) -> list[tuple[str, int, float | None, int]]:
        return [(f"{{self.device.id}}.{{p.name}}", now_ms(), self.device.reading, 0) for p in self.device.points]

    async def close(self) -> None:
        pass
'''

GATEWAY = """gateway: {{park: demo, enterprise: e01, id: gw1}}
devices:
  - id: boiler-gauge
    name: 1#锅炉压力表
    driver: {driver}
{settings}
    points:
      - {{name: pressure, metric: safety.pressure}}
      - {{name: twin, metric: safety.pressure}}
"""


@pytest.fixture
def gauge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh package with the driver module on sys.path; the driver is not registered yet."""
    name = f"gauge_{uuid.uuid4().hex[:8]}"  # a fresh name: no module or registry entry left by another test
    pkg = tmp_path / f"{name}_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "gauge.py").write_text(DRIVER_MODULE.format(name=name), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name


def register(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """The one line a new driver adds to edge_agent/drivers/base.py."""
    monkeypatch.setitem(base.DRIVERS, name, f"{name}_pkg.gauge:GaugeDriver")


def gateway_yaml(tmp_path: Path, driver: str, settings: str = "    reading: 3.5") -> Path:
    path = tmp_path / "gw.yaml"
    path.write_text(GATEWAY.format(driver=driver, settings=settings), encoding="utf-8")
    return path


def edge(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``parkmon edge ...`` as typed at a shell (in this process, where the registry line is)."""
    try:
        code = parkmon(["edge", *argv])
    except SystemExit as exc:  # argparse's --help
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_registered_driver_config_validates(gauge: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = gateway_yaml(tmp_path, gauge)
    with pytest.raises(ConfigError, match=r"device 'boiler-gauge', field driver: Input should be .*'hj212'"):
        load_config(path)  # without its registry line the driver does not exist
    register(monkeypatch, gauge)
    cfg = load_config(path)
    (dev,) = cfg.devices
    assert (dev.id, dev.driver, [p.name for p in dev.points]) == ("boiler-gauge", gauge, ["pressure", "twin"])
    assert dev.model_dump()["reading"] == 3.5 and dev.model_dump()["gauge_line"] == "/dev/ttyGAUGE0"


def test_wrong_settings_of_the_new_driver_are_refused_naming_the_device(
        gauge: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    register(monkeypatch, gauge)
    path = gateway_yaml(tmp_path, gauge, "    reading: 3.5\n    gauge_lines: /dev/ttyS1")  # a typo'd setting
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: 1 problem(s)")
    assert "device 'boiler-gauge', field gauge_lines: Extra inputs are not permitted" in msg
    # the settings of another driver are refused too, saying which drivers have them
    path = gateway_yaml(tmp_path, gauge, "    reading: 3.5\n    endpoint: opc.tcp://10.0.0.5:4840/")
    with pytest.raises(ConfigError, match=r"device 'boiler-gauge', field endpoint: Extra inputs are not permitted.*"
                                          r"drivers that have it: opcua"):
        load_config(path)
    # the new driver's own required setting and its own rule, each in the device's name
    code, out, err_text = edge(capsys, "check", "-c", str(gateway_yaml(tmp_path, gauge, "    name: x")))
    assert code == 2 and out == ""
    assert "device 'boiler-gauge', field reading: Field required" in err_text
    path = gateway_yaml(tmp_path, gauge, "    reading: -1")
    code, _, err_text = edge(capsys, "check", "-c", str(path))
    assert code == 2 and "device 'boiler-gauge', field reading: Input should be greater than or equal to 0" in err_text
    path.write_text(path.read_text(encoding="utf-8").replace("reading: -1", "reading: 1")
                    + "      - {name: third, metric: safety.pressure}\n", encoding="utf-8")
    code, _, err_text = edge(capsys, "check", "-c", str(path))
    assert code == 2 and "device 'boiler-gauge': Value error, a gauge has two points at most" in err_text


def test_parkmon_edge_check_and_poll_take_the_new_driver(
        gauge: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    register(monkeypatch, gauge)
    path = gateway_yaml(tmp_path, gauge)
    code, out, err = edge(capsys, "check", "-c", str(path))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "gateway demo/e01/gw1 -> mqtt 127.0.0.1:1883"
    assert lines[1].startswith(f"device boiler-gauge '1#锅炉压力表' {gauge}")
    assert [ln.split()[:2] for ln in lines[2:4]] == [["boiler-gauge.pressure", "safety.pressure"],
                                                     ["boiler-gauge.twin", "safety.pressure"]]
    assert lines[-1] == "2 points OK"

    code, out, err = edge(capsys, "poll", "-c", str(path), "--once")
    assert code == 0, err
    got = [json.loads(line) for line in out.splitlines()]
    assert [(s["point"], s["value"], s["quality_text"]) for s in got] == [
        ("boiler-gauge.pressure", 3.5, "good:none"), ("boiler-gauge.twin", 3.5, "good:none")]


def test_help_and_the_unknown_driver_error_list_the_new_driver(
        gauge: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = edge(capsys, "--help")
    assert code == 0 and "modbus_tcp" in out and gauge not in out
    register(monkeypatch, gauge)
    for argv in (["--help"], ["check", "--help"]):
        code, out, _ = edge(capsys, *argv)
        assert code == 0
        assert f"  {gauge}: fixed-reading pressure gauges, for tests (压力表, 仅测试)" in out.splitlines()
        assert any(line.startswith("  modbus_tcp, modbus_rtu, modbus_rtu_over_tcp: ") for line in out.splitlines())

    code, out, err = edge(capsys, "check", "-c", str(gateway_yaml(tmp_path, "gauge_typo")))
    assert code == 2 and out == ""
    assert "device 'boiler-gauge', field driver: Input should be 'modbus_tcp', 'modbus_rtu', 'modbus_rtu_over_tcp', " \
           f"'opcua', 'dlt645', 'hj212', 'iec104' or '{gauge}'" in err
