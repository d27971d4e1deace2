"""What the rest of parkmon needs to talk to a simulated park: gateway configs and registry info.

One gateway per enterprise (``gw-<enterprise>``), one device entry per simulated device, pointing
at the enterprise's Modbus TCP server and the device's profile: the configs a site engineer would
write, in the format of :mod:`edge_agent.config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulators.definition import ParkDef


def edge_configs(spec: ParkDef, ports: dict[str, int], mqtt_host: str, mqtt_port: int, buffer_dir: str | Path,
                 *, poll_interval_s: float = 2.0, modbus_host: str = "127.0.0.1") -> dict[str, dict[str, Any]]:
    """enterprise key -> gateway config dict (validates with ``edge_agent.config.parse_config``)."""
    out: dict[str, dict[str, Any]] = {}
    for ent in spec.enterprises:
        if ent.key not in ports:
            raise KeyError(f"no Modbus port for enterprise {ent.key}; ports known: {sorted(ports)}")
        out[ent.key] = {
            "gateway": {"park": spec.park.key, "enterprise": ent.key, "id": f"gw-{ent.key}"},
            "mqtt": {"host": mqtt_host, "port": mqtt_port},
            "buffer": {"path": str(Path(buffer_dir) / f"gw-{ent.key}.db")},
            "publish": {"interval_s": 1.0},
            "poll_interval_s": poll_interval_s,
            "devices": [{"id": d.id, "name": d.name or d.id, "driver": "modbus_tcp", "host": modbus_host,
                         "port": ports[ent.key], "unit": d.unit, "profile": d.profile_name}
                        for d in ent.devices],
        }
    return out


def park_info(spec: ParkDef) -> dict[str, Any]:
    """Registry facts: key, name_zh, name_en, park_class, region, enterprises {key: name}, devices."""
    info: dict[str, Any] = spec.park.model_dump()
    info["enterprises"] = {e.key: e.name or e.key for e in spec.enterprises}
    info["devices"] = {e.key: {d.id: {"name": d.name or d.id, "kind": d.kind, "profile": d.profile_name,
                                      "unit": d.unit} for d in e.devices} for e in spec.enterprises}
    return info
