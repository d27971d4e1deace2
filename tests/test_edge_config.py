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
