"""The API-router seam (issue 19): a router is one module — its routes with the access policy of each on
its decorator — plus one line in parkmon/api/routers.py. A throw-away router from a temporary package is
served, listed in the OpenAPI document with its policy, and that policy holds per role with real tokens."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ingest.store import Store
from parkmon.api import routers
from parkmon.api.app import create_app
from parkmon.api.auth import Auth, create_token, principal_of
from tests import test_tenancy
from tests.test_tenancy import _client, _get, _tokens

two_parks = test_tenancy.two_parks  # its fixture: two parks, three enterprises, readings and alerts

WEATHER = '''
"""A park's weather: a router nobody ships, to show the seam."""

from fastapi import APIRouter

from parkmon.api.routers import API_V1
from parkmon.api.tenancy import policy

router = APIRouter(prefix=API_V1, tags=["weather"])


@router.get("/parks/{park}/weather", openapi_extra=policy("park"))
def park_weather(park: str) -> dict[str, str]:
    return {"park": park, "sky": "clear"}


@router.get("/parks/{park}/enterprises/{enterprise}/weather", openapi_extra=policy("park"))
def enterprise_weather(park: str, enterprise: str) -> dict[str, str]:
    return {"park": park, "enterprise": enterprise, "sky": "clear"}


@router.get("/parks/{park}/weather/warnings", openapi_extra=policy("park", enterprise="read"))
def warnings(park: str) -> list[str]:
    return ["大风蓝色预警"]


@router.post("/parks/{park}/weather/reports",
             openapi_extra=policy("park", enterprise="query", writers=("operator", "enterprise")))
def report(park: str, enterprise: str | None = None) -> dict[str, str | None]:
    return {"park": park, "enterprise": enterprise}
'''


@pytest.fixture
def plug_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Write a router module into a fresh package on sys.path and register it by one line of the table;
    returns the module's name."""
    package = f"throwaway_{uuid.uuid4().hex[:8]}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))

    def plug(source: str) -> str:
        module = f"weather_{len(list((tmp_path / package).glob('weather_*.py')))}"  # new name: no stale import
        (tmp_path / package / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        monkeypatch.setitem(routers.ROUTERS, "weather", f"{package}.{module}:router")  # the one line
        return f"{package}.{module}"

    yield plug
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]


def test_a_router_is_one_module_and_one_table_line_served_under_its_policy(
        two_parks: Store, plug_in: Callable[[str], str]) -> None:
    plug_in(WEATHER)
    c = _client(two_parks)
    doc = c.app.openapi()  # type: ignore[attr-defined]
    op = doc["paths"]["/api/v1/parks/{park}/weather"]["get"]
    assert op["tags"] == ["weather"] and op["x-parkmon-access"]["about"] == "park"
    assert doc["paths"]["/api/v1/parks/{park}/weather/reports"]["post"]["x-parkmon-access"]["writers"] == [
        "operator", "enterprise"]

    tokens = _tokens(two_parks)
    tokens["p2 operator"] = create_token(two_parks, principal_of("operator", "二号园区管委会", park="p2"))
    url = "/api/v1/parks/p1/weather"
    assert c.get(url).status_code == 401
    ok = _get(c, tokens["operator"], url)
    assert ok.status_code == 200 and ok.json() == {"park": "p1", "sky": "clear"}
    assert _get(c, tokens["regulator"], url).status_code == 200  # p1 lies in its region
    assert _get(c, tokens["admin"], url).status_code == 200
    for who in ("a", "p2 operator", "gateway"):  # park-wide: not an enterprise's; another park's; no reads
        r = _get(c, tokens[who], url)
        assert r.status_code == 403, (who, r.status_code)
    assert "park-wide" in _get(c, tokens["a"], url).json()["detail"]
    assert _get(c, tokens["regulator"], "/api/v1/parks/p2/weather").status_code == 403  # outside its regions
    # an enterprise sees its own enterprise, and reads what the route opens to every enterprise of the park
    assert _get(c, tokens["a"], "/api/v1/parks/p1/enterprises/a/weather").status_code == 200
    assert _get(c, tokens["a"], "/api/v1/parks/p1/enterprises/b/weather").status_code == 403
    assert _get(c, tokens["a"], "/api/v1/parks/p1/weather/warnings").json() == ["大风蓝色预警"]
    assert _get(c, tokens["p2 operator"], "/api/v1/parks/p1/weather/warnings").status_code == 403
    # writes: the roles the route names, each within its scope (an enterprise for itself: ?enterprise=a)
    post = "/api/v1/parks/p1/weather/reports"
    for who, status in (("operator", 200), ("a", 200), ("regulator", 403), ("p2 operator", 403), ("gateway", 403)):
        r = c.post(post, params={"enterprise": "a"}, headers={"Authorization": f"Bearer {tokens[who]}"})
        assert r.status_code == status, (who, r.status_code, r.text)
    assert c.post(post, params={"enterprise": "b"}, headers={"Authorization": f"Bearer {tokens['a']}"}
                  ).status_code == 403


def test_a_route_without_its_policy_is_refused_when_the_app_is_built(
        two_parks: Store, plug_in: Callable[[str], str]) -> None:
    """Fail closed: a route that forgot its policy stops the app at start-up instead of being served open."""
    plug_in(WEATHER.replace(', openapi_extra=policy("park", enterprise="read")', ""))
    with pytest.raises(ValueError, match=r"/api/v1/parks/\{park\}/weather/warnings declares no access policy"):
        create_app(two_parks, auth=Auth(two_parks))
    # a policy about a point needs the point in its path
    plug_in(WEATHER.replace('"/parks/{park}/weather", openapi_extra=policy("park")',
                            '"/parks/{park}/weather", openapi_extra=policy("point")'))
    with pytest.raises(ValueError, match=r"a 'point' policy needs \{point_id\}"):
        TestClient(create_app(two_parks))
