"""Every dashboard parkmon ships. Adding one is a module with ``UID``, ``TITLE_ZH/EN`` and
``build()``, and one line here."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards import enterprise, gateways, park_overview, region, scorecard
from dashboards.common import number_ids

DASHBOARDS: list[ModuleType] = [park_overview, enterprise, region, scorecard, gateways]
FOLDER_UID = "parkmon"
FOLDER_TITLE = "parkmon 智慧园区"


def model(module: ModuleType) -> Dashboard:
    return number_ids(module.build().build())


def to_json(board: Dashboard) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(board, cls=JSONEncoder, ensure_ascii=False))
    return out


def all_json() -> dict[str, dict[str, Any]]:
    """uid -> dashboard JSON, for every dashboard."""
    return {m.UID: to_json(model(m)) for m in DASHBOARDS}
