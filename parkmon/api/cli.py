"""``parkmon api``: serve the HTTP API over a database; ``parkmon api token``: make, list, revoke tokens."""

from __future__ import annotations

import argparse
import json
import sys
from types import FrameType

from parkmon.common.clock import now_ms
from parkmon.common.env import default_db
from parkmon.common.secrecy import is_loopback


def _serve_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="parkmon api", description="parkmon HTTP API server (接口服务); "
                                 "OpenAPI docs at /docs. Every route needs a bearer token (parkmon api token "
                                 "create, or OIDC); `parkmon api token --help` for tokens.")
    ap.add_argument("--db", default=default_db(), help="database URL")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--targets", default=None, help="YAML overriding the default targets (analytics/defaults.yaml)")
    ap.add_argument("--no-auth", action="store_true",
                    help="serve without authentication: everyone who reaches the port reads and writes "
                         "everything; refused unless --host is a loopback address (demo, development)")
    ap.add_argument("--oidc-issuer", default=None, help="also accept JWTs from this OpenID Connect issuer")
    ap.add_argument("--oidc-audience", default="parkmon", help="the audience the JWTs must name")
    ap.add_argument("--oidc-jwks-url", default=None, help="the issuer's JWKS (default: from its discovery document)")
    ap.add_argument("--max-body-mb", type=float, default=32.0,
                    help="largest request body in MiB; larger ones get 413 unread (default 32: a records import)")
    return ap


def _token_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="parkmon api token", description="API tokens (访问令牌): the token is "
                                 "printed once and stored only as its SHA-256.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create", help="a token for a person or a system, with its role and scope")
    c.add_argument("--db", default=default_db(), help="database URL")
    c.add_argument("--name", required=True, help="who holds it (shown in the audit log)")
    c.add_argument("--role", required=True, choices=["admin", "regulator", "operator", "enterprise", "gateway"])
    c.add_argument("--region", action="append", default=[], help="regulator: a region it oversees (repeatable)")
    c.add_argument("--park", default=None, help="operator / enterprise / gateway: its park")
    c.add_argument("--enterprise", default=None, help="enterprise / gateway: its enterprise")
    c.add_argument("--expires-days", type=float, default=None, help="valid this many days (default: until revoked)")
    ls = sub.add_parser("list", help="tokens with their role and scope (never the token itself)")
    ls.add_argument("--db", default=default_db(), help="database URL")
    rv = sub.add_parser("revoke", help="revoke a token by its id (from list); effective within 10 s")
    rv.add_argument("--db", default=default_db(), help="database URL")
    rv.add_argument("id", type=int)
    return ap


def main(argv: list[str]) -> int:
    if argv[:1] == ["token"]:
        return _token(_token_parser().parse_args(argv[1:]))
    return _serve(_serve_parser().parse_args(argv))


def _serve(args: argparse.Namespace) -> int:
    if args.no_auth and not is_loopback(args.host):
        print(f"parkmon api: --no-auth on {args.host} would let anyone on the network read and write every park; "
              "serve on 127.0.0.1, or make tokens with `parkmon api token create`", file=sys.stderr)
        return 2
    import uvicorn

    from analytics.targets import load_share_settings
    from ingest.store import open_store
    from parkmon.api.app import create_app
    from parkmon.api.auth import Auth, OidcConfig, OidcVerifier

    store = open_store(args.db)
    store.create_schema()
    auth = None
    if not args.no_auth:
        oidc = None
        if args.oidc_issuer:
            oidc = OidcVerifier(OidcConfig(args.oidc_issuer, args.oidc_audience, args.oidc_jwks_url))
        auth = Auth(store, oidc)
    app = create_app(store, close_store=True, share_settings=load_share_settings(args.targets), auth=auth,
                     max_body=int(args.max_body_mb * 1024 * 1024))

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            app.state.board.close()  # open live boards' streams end, so Ctrl-C stops the server at once
            super().handle_exit(sig, frame)

    Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="info", timeout_graceful_shutdown=5)).run()
    return 0


def _token(args: argparse.Namespace) -> int:
    from ingest.store import open_store, tokens
    from parkmon.api.auth import principal_of

    store = open_store(args.db)
    try:
        store.create_schema()
        if args.cmd == "create":
            try:
                p = principal_of(args.role, args.name, args.region, args.park, args.enterprise)
            except ValueError as exc:
                print(f"parkmon api token create: {exc}", file=sys.stderr)
                return 2
            expires = None if args.expires_days is None else \
                now_ms() + int(args.expires_days * 86_400_000)
            token = tokens.create(store, p.name, p.role, p.regions, p.park, p.enterprise, expires)
            print(f"{p.describe()}: the token below is shown once; hand it over now "
                  "(`parkmon api token list` never shows it again)", file=sys.stderr)
            print(token)
        elif args.cmd == "list":
            for row in tokens.listing(store):
                print(json.dumps(row, ensure_ascii=False))
        elif not tokens.revoke(store, args.id):
            print(f"parkmon api token revoke: no live token with id {args.id}", file=sys.stderr)
            return 1
    finally:
        store.close()
    return 0
