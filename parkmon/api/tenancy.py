"""Who may see what: principals, tokens, OIDC, and the one policy every API request passes.

Roles (issue 10): ``regulator`` reads the parks of its regions and handles their alerts; ``operator``
runs one park (reads and writes it); ``enterprise`` sees its own enterprise only; ``gateway`` publishes
over MQTT and reads nothing here; ``admin`` sees all. A request is authenticated by a bearer token —
an opaque parkmon token (only its SHA-256 is stored) or, with OIDC configured, a JWT from the identity
provider whose claims name the role and scope — and then :func:`authorize`, a dependency on every
router, applies :func:`check` to the policy the route declares on its decorator
(``openapi_extra=policy(...)``): whose the data is (a park, a point, an alert, a region, or lists the
handler filters by :func:`visible_parks`, :func:`alert_scope`, :func:`owns_subscription`), what an
enterprise reaches of park-wide answers, who may write. The rules are the table at "the policy" below;
this module holds no route paths. Authentication off (``create_app(auth=None)``) is the demo's and the
tests' mode.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from fastapi import HTTPException, Request
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from ingest.store import Store, lookups
from ingest.store import alerts as alert_rows
from ingest.store.alerts import AlertScope
from ingest.store.records.spec import ID_MAX
from parkmon.api.auth import OPEN, ROLES, Auth, Principal, Role

# authentication lives in parkmon/api/auth.py; its names are re-exported here, where callers know them

_READ = {"GET", "HEAD", "OPTIONS"}


# --- the policy ------------------------------------------------------------------------------------------
# Every route declares its policy next to it, on its decorator: ``openapi_extra=policy("park")``. These are
# the rules, one row per role; ``about`` says whose the data is, the columns are its kinds:
#
#              public   signed_in   scoped    region        park / point / alert (whose: the path's park,
#                                                                                 the point's, the alert's)
#   admin      yes      yes         yes       yes           yes
#   regulator  yes      yes         yes *     its regions   the parks of its regions
#   operator   yes      yes         yes *     no            its park
#   enterprise yes      yes         yes *     no            its own enterprise; the park as a whole only as
#                                                           the route's ``enterprise`` says (query, read)
#   gateway    yes      no          no        no            no: gateway credentials publish over MQTT only
#
#   * the handler answers within the caller's scope (visible_parks, alert_scope, owns_subscription)
# A write (any method but GET, HEAD, OPTIONS) also needs the role among the route's ``writers`` (admin always).
About = Literal["public", "signed_in", "scoped", "region", "park", "point", "alert"]
EnterpriseReach = Literal["own", "query", "read"]
POLICY_KEY = "x-parkmon-access"  # where a route's policy sits in its OpenAPI operation
# the path parameter naming what a kind is about (a "point" route names its point {point_id})
_KEY: dict[str, str] = {"region": "region", "park": "park", "point": "point_id", "alert": "alert_id"}
_NO_WRITE: dict[str, str] = {
    "regulator": "write: regulators read and handle alerts; records are the park's",
    "enterprise": "write park records: an enterprise writes only its own (profile, devices, requests)",
}


class Access(BaseModel):
    """A route's access policy. ``about``: whose the data is (the columns above). ``enterprise``: what an
    enterprise principal reaches of an answer about its park as a whole — ``own``: nothing (only routes
    naming its enterprise, or a point or alert of it), ``query``: its own share of it through
    ``?enterprise=<its key>``, ``read``: all of it, reading (the park's notices and directory).
    ``writers``: the roles that may write through the route, each within its scope."""

    model_config = ConfigDict(frozen=True)
    about: About
    enterprise: EnterpriseReach = "own"
    writers: tuple[Role, ...] = ("operator",)


def policy(about: About, *, enterprise: EnterpriseReach = "own",
           writers: Iterable[Role] = ("operator",)) -> dict[str, Any]:
    """A route's policy for its decorator: ``@router.get(path, ..., openapi_extra=policy("park"))``;
    :func:`authorize` enforces it and the OpenAPI document shows it (``x-parkmon-access``)."""
    order = {r: i for i, r in enumerate(ROLES)}
    return {POLICY_KEY: Access(about=about, enterprise=enterprise,
                               writers=tuple(sorted(set(writers), key=order.__getitem__)))}


def access_of(route: Any) -> Access:
    """The policy a route declares; ValueError if none (a route is never served open by omission) or if
    its path lacks the parameter its kind is about."""
    access = (getattr(route, "openapi_extra", None) or {}).get(POLICY_KEY)
    path = getattr(route, "path", repr(route))
    if not isinstance(access, Access):
        raise ValueError(f"route {path} declares no access policy: give its decorator "
                         "openapi_extra=policy(...) (parkmon/api/tenancy.py)")
    key = _KEY.get(access.about)
    if key is not None and key not in getattr(route, "param_convertors", {}):
        raise ValueError(f"route {path}: a {access.about!r} policy needs {{{key}}} in its path")
    return access


def forbid(principal: Principal, why: str) -> HTTPException:
    return HTTPException(403, f"{principal.describe()} may not: {why}")


def park_region(store: Store, park: str) -> str | None:
    return next((p.region for p in store.parks() if p.key == park), None)


def check_park(principal: Principal, store: Store, park: str, enterprise: str | None) -> None:
    """``principal`` may see ``park`` (and, when given, ``enterprise`` of it)."""
    if principal.role == "admin":
        return
    if principal.role == "regulator":
        if park_region(store, park) not in principal.regions:
            raise forbid(principal, f"see park {park!r}, outside its regions")
        return
    if principal.park != park:
        raise forbid(principal, f"see park {park!r}")
    if principal.role == "enterprise" and enterprise is not None and enterprise != principal.enterprise:
        raise forbid(principal, f"see enterprise {enterprise!r}")


def check(principal: Principal, store: Store, method: str, access: Access, path: dict[str, Any],
          query: dict[str, str]) -> None:
    """The one rule every request passes: the table above, for a route's ``access`` and the request's
    path parameters and query."""
    if principal.role == "admin" or access.about == "public":
        return
    if principal.role == "gateway":
        raise forbid(principal, "use the API: gateway credentials publish over MQTT only")
    if method not in _READ and principal.role not in access.writers:
        raise forbid(principal, _NO_WRITE.get(principal.role, "write through this route"))
    if access.about in ("signed_in", "scoped"):
        return
    if access.about == "region":
        if principal.role != "regulator" or path.get("region") not in principal.regions:
            raise forbid(principal, f"see region {path.get('region')!r}")
        return
    park, enterprise = _target(store, access, path)
    check_park(principal, store, park, enterprise)
    if principal.role != "enterprise" or enterprise is not None:
        return
    if access.enterprise == "query":
        if query.get("enterprise") != principal.enterprise:
            raise forbid(principal, f"see park-wide figures; add enterprise={principal.enterprise} to see its own")
        return
    if access.enterprise == "read" and method in _READ:
        return
    raise forbid(principal, "see park-wide data: that is for the park's operator and its regulator")


def _target(store: Store, access: Access, path: dict[str, Any]) -> tuple[str, str | None]:
    """The park and enterprise a request is about: the path's, or the point's or the alert's."""
    if access.about == "park":
        return str(path["park"]), path.get("enterprise")
    what = access.about
    key = row_id(access, path)
    owner = lookups.point_owner(store, key) if what == "point" else alert_rows.whose(store, key)
    if owner is None:
        raise HTTPException(404, f"{what} {key} does not exist")
    return owner


def row_id(access: Access, path: dict[str, Any]) -> int:
    """The point or alert id a route names, or 422. Authorization runs before FastAPI validates the path:
    "abc" was a 500 here, and "2.0" passed FastAPI's lax int as 2 (issue 20 item 16)."""
    raw = str(path.get(_KEY[access.about], ""))
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= ID_MAX:
        raise HTTPException(422, f"{_KEY[access.about]} {raw[:40]!r} is not a {access.about} id: a whole number "
                                 f"from 1 to {ID_MAX}")
    return int(raw)


def visible_parks(principal: Principal, store: Store) -> set[str] | None:
    """The parks a principal sees; None: all of them."""
    if principal.role == "admin":
        return None
    if principal.role == "regulator":
        return {p.key for p in store.parks() if p.region in principal.regions}
    return {principal.park} if principal.park else set()


def alert_scope(principal: Principal, store: Store) -> AlertScope:
    """The alerts the principal may see, for the storage layer's alert listings."""
    if principal.role == "gateway":
        return AlertScope(frozenset())
    parks = visible_parks(principal, store)
    return AlertScope(None if parks is None else frozenset(parks),
                      principal.enterprise if principal.role == "enterprise" else None)


def owns_subscription(principal: Principal, store: Store, sub: dict[str, Any]) -> bool:
    """A subscription (as a dict: role, region, park, enterprise) is the principal's to see, make or delete.
    It belongs to its holder, the role it is for (issue 20 item 6): a regulator's, for a region or park it
    oversees, is the regulator's alone, even for a park whose operator reads everything else of it; an
    operator holds its park's operator and enterprise subscriptions (it files for its enterprises, as it
    files their service requests); an enterprise sees its own."""
    if principal.role == "admin":
        return True
    role, park = sub.get("role"), sub.get("park")
    if principal.role == "regulator":
        region = sub.get("region")
        if role != "regulator" or (region is None and park is None):
            return False  # a subscription to every park is an administrator's
        return ((region is None or region in principal.regions)
                and (park is None or park in (visible_parks(principal, store) or set())))
    if park != principal.park:
        return False
    if principal.role == "operator":
        return role in ("operator", "enterprise")
    return role == "enterprise" and sub.get("enterprise") == principal.enterprise


async def authorize(request: Request) -> None:
    """The dependency on every router: authenticate (unless the route is public), then :func:`check` the
    route's declared policy; the principal stays on ``request.state``."""
    access = access_of(request.scope.get("route"))
    if access.about == "public":
        return  # health for probes; the board's page, a shell without data (its stream asks for the token)
    auth: Auth | None = request.app.state.auth
    principal = OPEN if auth is None else await run_in_threadpool(auth.principal, request)
    request.state.principal = principal
    if access.about in ("point", "alert"):
        row_id(access, dict(request.path_params))
    if principal.role == "admin":
        return
    await run_in_threadpool(check, principal, request.app.state.store, request.method, access,
                            dict(request.path_params), dict(request.query_params))


def principal(request: Request) -> Principal:
    p: Principal = getattr(request.state, "principal", OPEN)
    return p
