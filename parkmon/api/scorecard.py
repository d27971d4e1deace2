"""一平台两中心六系统 scorecard of a park: the registered indicator (analytics.indicators.scorecard gathers
the facts and judges them), told what only this API knows: whether it serves the live board, and the
alert rules it runs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from analytics.indicators.base import Context
from parkmon.api.deps import StoreDep
from parkmon.api.indicators import answer
from parkmon.api.routers import API_V1
from parkmon.api.tenancy import policy

router = APIRouter(prefix=API_V1, tags=["indicators"])
@router.get("/parks/{park}/scorecard", summary="一平台两中心六系统: present, live, complete, and why not (建设评分)",
            openapi_extra=policy("park"))
def scorecard(request: Request, store: StoreDep, park: str) -> dict[str, Any]:
    return answer(store, "smart_park_scorecard", park, context(request))


def context(request: Request) -> Context:
    """What the scorecard learns from this API rather than from the store."""
    return Context(live_board=_board_served(request), alert_rules_in_force=_rules_in_force(request))


def _board_served(request: Request) -> bool:
    """The built-in live board is part of this API (parkmon/api/board.py sets app.state.board)."""
    return getattr(request.app.state, "board", None) is not None


def _rules_in_force(request: Request) -> int:
    engine = request.app.state.alert_engine
    if engine is not None:
        return len(engine.rules)
    from analytics.alerts.rules import load_rules  # the defaults every park gets unless it overrides them

    return len(load_rules())
