"""``parkmon api``: serve the HTTP API over a database."""

from __future__ import annotations

import argparse


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="parkmon api", description="parkmon HTTP API server (接口服务); "
                                 "OpenAPI docs at /docs")
    ap.add_argument("--db", default="sqlite:///parkmon.db", help="database URL")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--targets", default=None, help="YAML overriding the default targets (analytics/defaults.yaml)")
    args = ap.parse_args(argv)
    import uvicorn

    from analytics.targets import load_share_settings

    from ..store import open_store
    from .app import create_app

    store = open_store(args.db)
    store.create_schema()
    app = create_app(store, close_store=True, share_settings=load_share_settings(args.targets))
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
