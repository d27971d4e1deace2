"""Authentication: who a request's bearer token (or the board's cookie) says it comes from — a parkmon
token (only its SHA-256 is stored; ingest/store/tokens.py) or, with OIDC configured, a JWT from the identity
provider whose claims name the role and scope. What a principal may then do is parkmon/api/tenancy.py's.

Bounded against anonymous clients (issue 20 item 11): a token longer than :data:`MAX_TOKEN` is refused
unread, and the cache of looked-up tokens is a bounded LRU with a small, separate set for unknown ones.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from fastapi import HTTPException, Request

from ingest.store import Store, tokens
from parkmon.common.clock import now_ms

Role = Literal["admin", "regulator", "operator", "enterprise", "gateway"]
ROLES: tuple[Role, ...] = ("admin", "regulator", "operator", "enterprise", "gateway")
TOKEN_COOKIE = "parkmon_token"
# the board's reads, the only requests the cookie authenticates: its pages, its stream and snapshot
_COOKIE_PATHS = re.compile(r"/board/[^/]*|/api/v1/parks/[^/]+/live(/snapshot)?")
MAX_TOKEN = 4096  # characters; parkmon tokens are 47, an IdP's JWT a few hundred to 2 KB


def cookie_allowed(method: str, path: str) -> bool:
    return method in ("GET", "HEAD") and _COOKIE_PATHS.fullmatch(path) is not None


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
def create_token(store: Store, p: Principal, expires_ms: int | None = None) -> str:
    """A new token for ``p``; returned once, stored only as its hash (ingest/store/tokens.py)."""
    return tokens.create(store, p.name, p.role, p.regions, p.park, p.enterprise, expires_ms)


def lookup_token(store: Store, token: str, at_ms: int) -> Principal | None:
    h = tokens.holder(store, token, at_ms)
    return None if h is None else Principal(h.name, cast(Role, h.role), h.regions, h.park, h.enterprise)


def revoke_token(store: Store, token_id: int) -> bool:
    return tokens.revoke(store, token_id)


def list_tokens(store: Store) -> list[dict[str, Any]]:
    return tokens.listing(store)


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
            # exp required (issue 20 item 17): a token without one would never expire
            claims = jwt.decode(token, key.key, algorithms=list(self.cfg.algorithms), audience=self.cfg.audience,
                                issuer=self.cfg.issuer, options={"require": ["exp", "iss", "aud"]})
        except jwt.PyJWTError as exc:
            raise HTTPException(401, f"the bearer token was refused: {exc}",
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
        c = self.cfg
        regions = claims.get(c.regions_claim) or []
        try:
            # claims of the wrong type (a list for a park, a number for regions) were a 500 (item 16)
            if isinstance(regions, str):
                regions = [regions]
            if not isinstance(regions, list) or not all(isinstance(r, str) for r in regions):
                raise ValueError(f"claim {c.regions_claim} must be a string or a list of strings")
            for claim in (c.role_claim, c.park_claim, c.enterprise_claim, c.name_claim, "sub"):
                if claims.get(claim) is not None and not isinstance(claims[claim], str):
                    raise ValueError(f"claim {claim} must be a string")
            name = claims.get(c.name_claim) or claims.get("sub")
            if not name:
                raise ValueError(f"the token names no one (claim {c.name_claim} or sub)")
            return principal_of(claims.get(c.role_claim) or "", name, regions,
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
    # bounded (issue 20 item 11): distinct fake tokens grew the cache, and the server, for good
    cache_size: int = 10_000  # live tokens remembered (LRU)
    refused_size: int = 1_024  # unknown tokens remembered, so a retrying client costs no query
    _cache: OrderedDict[str, tuple[float, Principal]] = field(default_factory=OrderedDict)
    _refused: OrderedDict[str, float] = field(default_factory=OrderedDict)

    def _lookup(self, token: str) -> Principal | None:
        """The token's holder, from a bounded cache for ``cache_s``; None: unknown, revoked or expired."""
        now = time.monotonic()
        hit = self._cache.get(token)
        if hit is not None and now - hit[0] < self.cache_s:
            self._cache.move_to_end(token)
            return hit[1]
        seen = self._refused.get(token)
        if seen is not None and now - seen < self.cache_s:
            return None
        self._cache.pop(token, None)
        self._refused.pop(token, None)
        found = lookup_token(self.store, token, now_ms())
        kept: OrderedDict[str, Any] = self._refused if found is None else self._cache
        kept[token] = now if found is None else (now, found)
        if len(kept) > (self.refused_size if found is None else self.cache_size):
            kept.popitem(last=False)
        return found

    def principal(self, request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header and request.cookies.get(TOKEN_COOKIE) and cookie_allowed(request.method, request.url.path):
            # a browser's board: EventSource cannot send headers, so the sign-in sets the token as an HttpOnly
            # cookie (never in a URL, where access logs would keep it); good for the board's reads only, so
            # another page of the same site cannot write with it (issue 20 item 15)
            scheme, token = "bearer", request.cookies[TOKEN_COOKIE]
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, "authentication required: send 'Authorization: Bearer <token>' (tokens come "
                                     "from `parkmon api token create`, or your identity provider with OIDC)",
                                headers={"WWW-Authenticate": "Bearer"})
        if len(token) > MAX_TOKEN:
            raise HTTPException(401, f"the bearer token is longer than {MAX_TOKEN} characters: no parkmon or "
                                     "identity-provider token is; send the token you were given",
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if token.count(".") == 2 and self.oidc is not None:
            return self.oidc.principal(token)
        found = self._lookup(token)
        if found is None:
            raise HTTPException(401, "the bearer token is unknown, revoked or expired",
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return found
