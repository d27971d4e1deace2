"""The mapping file: which Sparkplug edge node is which parkmon gateway, and which metric is which point.

```yaml
nodes:
  - group: PlantA            # Sparkplug group id
    node: Edge1              # edge node id
    park: demo
    enterprise: textile-01
    gateway: sp-edge1        # parkmon gateway id (default: the node id)
    unmapped: skip           # skip (default) | keep: "<device>.<metric>" with no metric, names made safe
    points:
      - device: Meter1       # Sparkplug device id; leave out for the node's own metrics
        sparkplug: Energy/Import   # the metric's name in the birth
        point: meter1.import # parkmon device.point
        metric: elec.import.energy # parkmon's vocabulary (parkmon/common/metrics.py): its unit is stored
        unit: Wh             # the unit the node declares (engUnit); a birth saying otherwise is refused
        scale: 0.001         # value x scale is in the vocabulary's unit (Wh -> kWh)
```

A birth that gives a unit for a mapped metric must give the one expected (``unit``, else the vocabulary's): a
meter sending Wh where kWh is stored would be 1000 times off, silently.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from parkmon.common import metrics as vocabulary
from parkmon.common import wire
from parkmon.common.yamlfile import read_mapping

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


class MappingError(ValueError):
    """The mapping file is wrong; the message names the file and the entry."""


class PointMap(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    device: str = ""
    sparkplug: str
    point: str
    metric: str
    unit: str | None = None
    scale: float = 1.0

    @field_validator("point")
    @classmethod
    def _point(cls, v: str) -> str:
        device, _, point = v.partition(".")
        wire.check_id("device", device)
        wire.check_id("point", point)
        return v

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        try:
            vocabulary.get(v)
        except KeyError as exc:
            raise ValueError(str(exc.args[0])) from None
        return v

    @property
    def expected_unit(self) -> str | None:
        """What a birth's unit must be; None: anything (an unmapped metric kept as it comes)."""
        if self.unit is not None:
            return self.unit
        return vocabulary.get(self.metric).unit if self.metric else None


class NodeMap(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    group: str
    node: str
    park: str
    enterprise: str
    gateway: str = ""
    unmapped: Literal["skip", "keep"] = "skip"
    points: list[PointMap] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ids(self) -> NodeMap:
        wire.check_id("park", self.park)
        wire.check_id("enterprise", self.enterprise)
        wire.check_id("gateway", self.gateway_id)
        seen: set[tuple[str, str]] = set()
        for p in self.points:
            key = (p.device, p.sparkplug)
            if key in seen:
                raise ValueError(f"metric {p.sparkplug!r} of device {p.device!r} is mapped twice")
            seen.add(key)
        return self

    @property
    def gateway_id(self) -> str:
        return self.gateway or self.node

    def find(self, device: str, name: str) -> PointMap | None:
        for p in self.points:
            if p.device == device and p.sparkplug == name:
                return p
        if self.unmapped == "keep":
            dev = _UNSAFE.sub("_", device or "node")[:64]
            # built unchecked: metric "" is a point outside the vocabulary, like a gateway's uncatalogued one
            return PointMap.model_construct(device=device, sparkplug=name, metric="", unit=None, scale=1.0,
                                            point=f"{dev}.{_UNSAFE.sub('_', name)[:64]}") if name else None
        return None


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    nodes: list[NodeMap]

    def node(self, group: str, node: str) -> NodeMap | None:
        for n in self.nodes:
            if n.group == group and n.node == node:
                return n
        return None

    @property
    def groups(self) -> list[str]:
        return sorted({n.group for n in self.nodes})


def load(path: str | Path) -> Mapping:
    doc = read_mapping(path, MappingError, "no such mapping file; see docs/sparkplug.md for its format",
                       "nodes: [{group, node, park, enterprise, points: [...]}]")
    try:
        return Mapping.model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'top'}: {e['msg'].removeprefix('Value error, ')}"
                             for e in exc.errors())
        raise MappingError(f"{path}: {problems}") from None
