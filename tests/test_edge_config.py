"""Gateway config: the README example loads; errors name the device, the point and the arithmetic."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge_agent.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]


def _minimal(**device: object) -> dict[str, object]:
    dev: dict[str, object] = {"id": "m1", "points": [{"name": "p", "metric": "elec.active_power", "address": 0}]}
    dev.update(device)
    return {"gateway": {"park": "demo", "enterprise": "e01", "id": "gw1"}, "devices": [dev]}


def test_readme_example_is_a_valid_config(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(gateway:.*?)```", text, re.S)
    assert block, "README lost its gateway config example"
    path = tmp_path / "gw.yaml"
    path.write_text(block.group(1), encoding="utf-8")
    cfg = load_config(path)
    assert [d.id for d in cfg.devices] == ["grid", "boiler"]
    # the profile expanded into the meter's points
    assert {p.name for p in cfg.devices[0].points} == {"import", "export", "power"}


def test_every_shipped_profile_validates() -> None:
    for profile in sorted((ROOT / "edge_agent" / "profiles").glob("*.yaml")):
        cfg = parse_config(_minimal(profile=profile.stem, points=[]))
        assert cfg.devices[0].points, profile.name


def test_error_names_device_point_and_arithmetic() -> None:
    raw = _minimal(points=[{"name": "pw", "metric": "elec.active_power", "address": 0, "type": "float32",
                            "count": 1}])
    with pytest.raises(ConfigError) as err:
        parse_config(raw, "gw.yaml")
    msg = str(err.value)
    assert "gw.yaml" in msg and "device 'm1'" in msg and "point 'pw'" in msg
    assert "FLOAT32 needs 2 registers, count=1" in msg


def test_unknown_metric_suggests_known_ones() -> None:
    raw = _minimal(points=[{"name": "so2", "metric": "cems.so3", "address": 0}])
    with pytest.raises(ConfigError, match=r"unknown metric 'cems.so3'.*cems.so2"):
        parse_config(raw)


def test_unknown_profile_lists_shipped_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown profile .nope.*sim_grid_meter"):
        parse_config(_minimal(profile="nope"))


def test_duplicate_device_ids_rejected() -> None:
    raw = _minimal()
    raw["devices"] = raw["devices"] * 2  # type: ignore[operator]
    with pytest.raises(ConfigError, match="device id 'm1' appears twice"):
        parse_config(raw)


def test_missing_file_and_bad_yaml_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("gateway: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_deploy_example_config_is_valid() -> None:
    cfg = load_config(ROOT / "deploy" / "gateway" / "gateway.example.yaml")
    assert cfg.mqtt.username == "gw-e01"
    assert [d.id for d in cfg.devices] == ["grid", "cems1"]


ALL_DRIVERS = ("'modbus_tcp', 'modbus_rtu', 'modbus_rtu_over_tcp', 'opcua', 'dlt645', 'hj212' or 'iec104'")
P_ADDR = [{"name": "p", "metric": "elec.active_power", "address": 0}]
P_NODE = [{"name": "p", "metric": "elec.active_power", "node_id": "ns=2;s=P"}]


@pytest.mark.parametrize(("device", "message"), [
    ({"driver": "profibus"}, f"device 'm1', field driver: Input should be {ALL_DRIVERS}"),
    ({"driver": 7}, f"device 'm1', field driver: Input should be {ALL_DRIVERS}"),
    ({"driver": "modbus_rtu"}, "device 'm1': Value error, driver modbus_rtu needs serial: {device: /dev/ttyUSB0"),
    ({"serial": {"device": "/dev/ttyS0"}},
     "device 'm1': Value error, serial settings are for drivers modbus_rtu and dlt645, not modbus_tcp"),
    ({"driver": "opcua"}, "device 'm1': Value error, driver opcua needs endpoint: opc.tcp://host:4840/..."),
    ({"driver": "opcua", "endpoint": "opc.tcp://h:4840/"},
     "device 'm1': Value error, OPC UA points need node_id (e.g. ns=2;s=Meter.Power): p"),
    ({"driver": "dlt645"}, "device 'm1': Value error, driver dlt645 needs meter_address: the 12 digits on the meter's"),
    ({"driver": "dlt645", "meter_address": "398192000337"},
     "device 'm1': Value error, point 'p': DL/T 645 points need a di parkmon can decode (00000000, 00010000"),
    ({"driver": "hj212", "mn": "MN1"},
     "device 'm1': Value error, driver hj212 needs mn and pw: the data logger's MN and access password"),
    ({"driver": "hj212", "mn": "MN1", "pw": "1", "st": "33", "points": []},
     "device 'm1', field st: Input should be '31' or '32'"),
    ({"driver": "hj212", "mn": "MN1", "pw": "1"}, "device 'm1': Value error, HJ 212 point 'p': name it code-Field"),
    ({"points": [{"name": "p", "metric": "elec.active_power"}]},
     "device 'm1': Value error, Modbus points need an address: p"),
    ({"points": []}, "device 'm1': Value error, device has no points: list points or name a profile"),
    ({"points": P_ADDR * 2}, "device 'm1': Value error, point 'p' appears twice"),
    ({"driver": "opcua", "endpoint": "opc.tcp://h:4840/", "points": P_NODE * 2},
     "device 'm1': Value error, point 'p' appears twice"),
    ({"mn": "MN1"}, "device 'm1', field mn: Extra inputs are not permitted: driver modbus_tcp has no such setting "
                    "(drivers that have it: hj212)"),
    ({"driver": "opcua", "endpoint": "opc.tcp://h:4840/", "points": P_NODE, "serial": {"device": "/dev/ttyS0"}},
     "device 'm1', field serial: Extra inputs are not permitted: driver opcua has no such setting (drivers that have "
     "it: modbus_tcp, modbus_rtu, modbus_rtu_over_tcp, dlt645)"),
])
def test_each_driver_says_what_is_wrong_naming_the_device(device: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_minimal(**device), "gw.yaml")
    assert str(err.value).startswith("gw.yaml: 1 problem(s) in the gateway configuration:\n  - ")
    assert message in str(err.value)


def test_edge_check_prints_each_driver_in_its_terms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge_agent.cli import main

    path = tmp_path / "gw.yaml"
    path.write_text("""gateway: {park: demo, enterprise: e01, id: gw1}
devices:
  - {id: m645, driver: dlt645, meter_address: "398192000337",
     points: [{name: imp, metric: elec.import.energy, di: "00010000"}]}
  - {id: ua, driver: opcua, endpoint: "opc.tcp://10.0.0.7:4840/",
     points: [{name: p, metric: elec.active_power, node_id: "ns=2;s=P"}]}
  - {id: rtu, driver: modbus_rtu, serial: {device: /dev/ttyUSB0}, unit: 3,
     points: [{name: v, metric: elec.voltage, address: 0, type: float32}]}
  - {id: cems1, driver: hj212, port: 9212, mn: MN0001, pw: "123456", st: "31",
     points: [{name: a21026-Rtd, metric: cems.so2}]}
""", encoding="utf-8")
    assert main(["check", "-c", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "device m645 '' dlt645 127.0.0.1:502 meter 398192000337: 1 points every 5.0 s"
    assert out[2].split() == ["m645.imp", "elec.import.energy", "di", "00010000", "x1+0", "[kWh]"]
    assert out[3] == "device ua '' opcua opc.tcp://10.0.0.7:4840/ (subscription): 1 nodes, every 5.0 s"
    assert out[4].split() == ["ua.p", "elec.active_power", "ns=2;s=P", "x1+0", "[kW]"]
    assert out[5] == "device rtu '' modbus_rtu /dev/ttyUSB0 unit 3: 1 points in 1 request(s) every 5.0 s"
    assert out[6].split() == ["rtu.v", "elec.voltage", "holding", "@0", "float32", "ABCD", "x1+0", "[V]"]
    assert out[7] == ("device cems1 '' hj212 logger MN MN0001 (ST 31) dials in to 127.0.0.1:9212: 1 points; "
                      "silent > 300 s = comm failure")
    assert out[8].split()[:3] == ["cems1.a21026-Rtd", "cems.so2", "[mg/m3]"]
    assert out[-1] == "4 points OK"
