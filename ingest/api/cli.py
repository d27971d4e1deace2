"""``parkmon api``: serve the HTTP API over a database."""

from __future__ import annotations

import argparse
from types import FrameType


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

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            app.state.board.close()  # open live boards' streams end, so Ctrl-C stops the server at once
            super().handle_exit(sig, frame)

    Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="info", timeout_graceful_shutdown=5)).run()
    return 0
