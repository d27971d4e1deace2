"""Who may see what: principals, tokens, OIDC, and the one policy every API request passes.

Roles (issue 10): ``regulator`` reads the parks of its regions and handles their alerts; ``operator``
runs one park (reads and writes it); ``enterprise`` sees its own enterprise only; ``gateway`` publishes
over MQTT and reads nothing here; ``admin`` sees all. A request is authenticated by a bearer token —
an opaque parkmon token (only its SHA-256 is stored) or, with OIDC configured, a JWT from the identity
provider whose claims name the role and scope — and then :func:`authorize`, a dependency on every
router, applies :func:`check`: the park in the path must be visible, an enterprise principal must be
asking about its own enterprise, a regulator may not write except on alerts. The lists without a park in
the path (parks, regions, alerts, alert events, subscriptions) filter by :func:`visible_parks` and
:func:`alert_scope`. Authentication off (``create_app(auth=None)``) is the demo's and the tests' mode.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from fastapi import HTTPException, Request
from sqlalchemy import ColumnElement, Connection, and_, false, insert, select, true, update

from ingest.store import Store
from ingest.store import record_tables as t
from parkmon.common.clock import now_ms

Role = Literal["admin", "regulator", "operator", "enterprise", "gateway"]
ROLES: tuple[Role, ...] = ("admin", "regulator", "operator", "enterprise", "gateway")
_READ = {"GET", "HEAD", "OPTIONS"}
TOKEN_COOKIE = "parkmon_token"


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    regions: frozenset[str] = frozenset()
    park: str | None = None
    enterprise: str | None = None

    def describe(self) -> str:
        scope = {"admin": "all parks", "regulator": f"regions {', '.join(sorted(self.regions))}",
                 "operator": f"park {self.park}", "enterprise": f"enterprise {self.park}/{self.enterprise}",
                 "gateway": f"gateway of {self.park}/{self.enterprise}"}[self.role]
        return f"{self.name} ({self.role}: {scope})"


OPEN = Principal("anonymous (authentication off)", "admin")


def principal_of(role: str, name: str, regions: Sequence[str] = (), park: str | None = None,
                 enterprise: str | None = None) -> Principal:
    """A principal, or ValueError saying what its role needs."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    r: Role = role  # narrowed by the membership test above
    if r == "regulator" and not regions:
        raise ValueError("a regulator needs the regions it oversees (--region, repeatable)")
    if r in ("operator", "enterprise", "gateway") and not park:
        raise ValueError(f"a {r} needs its park (--park)")
    if r in ("enterprise", "gateway") and not enterprise:
        raise ValueError(f"a {r} needs its enterprise (--enterprise)")
    return Principal(name, r, frozenset(regions), park if r != "admin" else None,
                     enterprise if r in ("enterprise", "gateway") else None)


# --- tokens ------------------------------------------------------------------------------------------
def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(conn: Connection, p: Principal, expires_ms: int | None = None) -> str:
    """A new token for ``p``; returned once, stored only as its hash."""
    token = "pkm_" + secrets.token_urlsafe(32)
    conn.execute(insert(t.api_tokens).values(
        token_sha256=token_hash(token), name=p.name, role=p.role, regions=",".join(sorted(p.regions)),
        park=p.park, enterprise=p.enterprise, created_ms=now_ms(), expires_ms=expires_ms))
    return token


def lookup_token(conn: Connection, token: str, now_ms: int) -> Principal | None:
    tk = t.api_tokens
    row = conn.execute(select(tk).where(tk.c.token_sha256 == token_hash(token), tk.c.revoked_ms.is_(None))).first()
    if row is None or (row.expires_ms is not None and row.expires_ms <= now_ms):
        return None
    return Principal(row.name, cast(Role, row.role), frozenset(x for x in row.regions.split(",") if x),
                     row.park, row.enterprise)


def revoke_token(conn: Connection, token_id: int) -> bool:
    tk = t.api_tokens
    return conn.execute(update(tk).where(tk.c.id == token_id, tk.c.revoked_ms.is_(None))
                        .values(revoked_ms=now_ms())).rowcount == 1


def list_tokens(conn: Connection) -> list[dict[str, Any]]:
    tk = t.api_tokens
    return [{k: v for k, v in r._mapping.items() if k != "token_sha256"}
            for r in conn.execute(select(tk).order_by(tk.c.id))]


# --- OIDC ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OidcConfig:
    """Where the identity provider is and which claims carry parkmon's role and scope."""

    issuer: str
    audience: str
    jwks_url: str | None = None  # default: from {issuer}/.well-known/openid-configuration
    role_claim: str = "parkmon_role"
    regions_claim: str = "parkmon_regions"
    park_claim: str = "parkmon_park"
    enterprise_claim: str = "parkmon_enterprise"
    name_claim: str = "preferred_username"
    algorithms: tuple[str, ...] = ("RS256", "ES256")


class OidcVerifier:
    def __init__(self, cfg: OidcConfig) -> None:
        import jwt

        self.cfg = cfg
        url = cfg.jwks_url or self._discover()
        self._jwks = jwt.PyJWKClient(url, cache_keys=True, lifespan=3600)

    def _discover(self) -> str:
        url = self.cfg.issuer.rstrip("/") + "/.well-known/openid-configuration"
        with urllib.request.urlopen(url, timeout=10) as resp:
            return str(json.loads(resp.read())["jwks_uri"])

    def principal(self, token: str) -> Principal:
        import jwt

        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(token, key.key, algorithms=list(self.cfg.algorithms), audience=self.cfg.audience,
                                issuer=self.cfg.issuer)
        except jwt.PyJWTError as exc:
            raise HTTPException(401, f"the bearer token was refused: {exc}",
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
        c = self.cfg
        regions = claims.get(c.regions_claim) or []
        try:
            return principal_of(str(claims.get(c.role_claim, "")), str(claims.get(c.name_claim) or claims["sub"]),
                                [regions] if isinstance(regions, str) else list(regions),
                                claims.get(c.park_claim), claims.get(c.enterprise_claim))
        except ValueError as exc:
            raise HTTPException(403, f"the identity provider's token gives no usable parkmon role: {exc}; "
                                     f"set the claims {c.role_claim}, {c.park_claim}, …") from None


# --- authentication --------------------------------------------------------------------------------------
@dataclass
class Auth:
    """Authentication for an app: parkmon tokens from the store, and OIDC when configured."""

    store: Store
    oidc: OidcVerifier | None = None
    cache_s: float = 10.0  # a revoked token stops working within this
    _cache: dict[str, tuple[float, Principal | None]] = field(default_factory=dict)

    def principal(self, request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header and request.cookies.get(TOKEN_COOKIE):
            # a browser's board: EventSource cannot send headers, so the page keeps the token in a cookie
            # (never in a URL, where access logs would keep it)
            scheme, token = "bearer", request.cookies[TOKEN_COOKIE]
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, "authentication required: send 'Authorization: Bearer <token>' (tokens come "
                                     "from `parkmon api token create`, or your identity provider with OIDC)",
                                headers={"WWW-Authenticate": "Bearer"})
        if token.count(".") == 2 and self.oidc is not None:
            return self.oidc.principal(token)
        now = time.monotonic()
        hit = self._cache.get(token)
        if hit is None or now - hit[0] >= self.cache_s:
            with self.store.engine.connect() as conn:
                hit = (now, lookup_token(conn, token, now_ms()))
            self._cache[token] = hit
        if hit[1] is None:
            raise HTTPException(401, "the bearer token is unknown, revoked or expired",
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return hit[1]


# --- the policy ------------------------------------------------------------------------------------------
# routes an enterprise may use for its own enterprise through ?enterprise=<its key>
ENTERPRISE_QUERY = {
    "/parks/{park}/indicators/new-energy-share", "/parks/{park}/indicators/electricity-activity",
    "/parks/{park}/indicators/comprehensive-energy", "/parks/{park}/indicators/intensity",
    "/parks/{park}/economy", "/parks/{park}/service-requests",
}
# what every enterprise of a park may read: the park's notices and directory (综合服务)
PARK_PUBLIC = {"/parks/{park}/notices", "/parks/{park}/directory"}
# lists whose handlers filter by the principal
FILTERED = {"/parks", "/regions", "/alerts", "/alert-events", "/alert-subscriptions"}
REGULATOR_WRITES = {"/alerts/{alert_id}/acknowledge", "/alerts/{alert_id}/resolve", "/alert-subscriptions",
                    "/alert-subscriptions/{sid}"}


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


def check(principal: Principal, store: Store, method: str, route: str, path: dict[str, Any],
          query: dict[str, str]) -> None:
    """The one rule every request passes; ``route`` is the template after /api/v1 (or the board's)."""
    if principal.role == "admin":
        return
    if principal.role == "gateway":
        raise forbid(principal, "use the API: gateway credentials publish over MQTT only")
    if method not in _READ and principal.role == "regulator" and route not in REGULATOR_WRITES:
        raise forbid(principal, "write: regulators read and handle alerts; records are the park's")
    if method not in _READ and principal.role == "enterprise" and "{enterprise}" not in route \
            and route not in ("/parks/{park}/service-requests",):
        raise forbid(principal, "write park records: an enterprise writes only its own (profile, devices, requests)")
    if route in FILTERED:
        return
    if route.startswith("/regions/{region}"):
        if principal.role != "regulator" or path.get("region") not in principal.regions:
            raise forbid(principal, f"see region {path.get('region')!r}")
        return
    target = _target(store, route, path)
    if target is None:
        if "park" not in path:
            return
        target = (str(path["park"]), path.get("enterprise"))
    park, enterprise = target
    check_park(principal, store, park, enterprise)
    if principal.role != "enterprise" or enterprise is not None:
        return
    if route in ENTERPRISE_QUERY:
        asked = query.get("enterprise")
        if asked != principal.enterprise:
            raise forbid(principal, f"see park-wide figures; add enterprise={principal.enterprise} to see its own")
        return
    if route in PARK_PUBLIC and method in _READ:
        return
    raise forbid(principal, "see park-wide data: that is for the park's operator and its regulator")


def _target(store: Store, route: str, path: dict[str, Any]) -> tuple[str, str | None] | None:
    """The park and enterprise a route without them in its path is about (a point, an alert)."""
    if route == "/points/{point_id}/rollups":
        return _lookup(store, "point", int(path["point_id"]))
    if route.startswith("/alerts/{alert_id}"):
        return _lookup(store, "alert", int(path["alert_id"]))
    return None


def _lookup(store: Store, what: str, key: int) -> tuple[str, str | None]:
    from ingest.store import schema as s

    with store.engine.connect() as conn:
        if what == "point":
            row = conn.execute(select(s.parks.c.key, s.enterprises.c.key)
                               .select_from(s.points.join(s.devices, s.devices.c.id == s.points.c.device_id)
                                            .join(s.enterprises, s.enterprises.c.id == s.devices.c.enterprise_id)
                                            .join(s.parks, s.parks.c.id == s.enterprises.c.park_id))
                               .where(s.points.c.id == key)).first()
        else:
            row = conn.execute(select(t.alerts.c.park, t.alerts.c.enterprise).where(t.alerts.c.id == key)).first()
    if row is None:
        raise HTTPException(404, f"{what} {key} does not exist")
    return str(row[0]), row[1]


def visible_parks(principal: Principal, store: Store) -> set[str] | None:
    """The parks a principal sees; None: all of them."""
    if principal.role == "admin":
        return None
    if principal.role == "regulator":
        return {p.key for p in store.parks() if p.region in principal.regions}
    return {principal.park} if principal.park else set()


def alert_scope(principal: Principal, store: Store) -> ColumnElement[bool]:
    """A WHERE clause on ``alerts`` for what the principal may see."""
    a = t.alerts
    if principal.role == "admin":
        return true()
    if principal.role == "gateway":
        return false()
    parks = visible_parks(principal, store) or set()
    clause: ColumnElement[bool] = a.c.park.in_(sorted(parks)) if parks else false()
    if principal.role == "enterprise":
        clause = and_(clause, a.c.enterprise == principal.enterprise)
    return clause


def owns_subscription(principal: Principal, store: Store, sub: dict[str, Any]) -> bool:
    """A subscription (as a dict: region, park, enterprise) lies within the principal's scope."""
    if principal.role == "admin":
        return True
    if principal.role == "regulator":
        parks = visible_parks(principal, store) or set()
        return (sub.get("region") in principal.regions) or (sub.get("park") in parks)
    if sub.get("park") != principal.park:
        return False
    return principal.role == "operator" or sub.get("enterprise") == principal.enterprise


async def authorize(request: Request) -> None:
    """The router dependency: authenticate, then :func:`check`; the principal stays on ``request.state``."""
    auth: Auth | None = request.app.state.auth
    route = getattr(request.scope.get("route"), "path", request.url.path)
    if auth is not None and route == "/board/{park}":
        return  # the board's page is a shell without data; its stream asks for the token (a cookie)
    principal = OPEN if auth is None else auth.principal(request)
    request.state.principal = principal
    if principal.role == "admin":
        return
    route = route.removeprefix("/api/v1")
    from starlette.concurrency import run_in_threadpool

    await run_in_threadpool(check, principal, request.app.state.store, request.method, route,
                            dict(request.path_params), dict(request.query_params))


def principal(request: Request) -> Principal:
    p: Principal = getattr(request.state, "principal", OPEN)
    return p
