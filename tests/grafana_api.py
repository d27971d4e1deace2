"""A stand-in for Grafana's HTTP API, for the push test: Grafana itself cannot run here (no container
engine, no Debian package). It implements the documented endpoints parkmon uses, refuses what Grafana
refuses (no or wrong token, a dashboard without uid/title, an unknown folder, a stale version without
``overwrite``, a data source without type/name) and keeps what a real Grafana would keep, so the test
can check what a second push changes.

Documented at grafana.com/docs/grafana/latest/developers/http_api/: dashboard (``POST /api/dashboards/db``,
``GET /api/dashboards/uid/:uid``), folder (``GET /api/folders/:uid``, ``POST /api/folders``,
``PUT /api/folders/:uid``), data source (``GET /api/datasources/uid/:uid``, ``POST /api/datasources``,
``PUT /api/datasources/uid/:uid``).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class GrafanaStandIn:
    def __init__(self, token: str = "glsa_test") -> None:
        self.token = token
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}  # uid -> {"dashboard", "folderUid", "version"}
        self.datasources: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.refused: list[tuple[str, str, int, str]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                stand_in.requests.append((method, self.path))
                body: Any = None
                if method in ("POST", "PUT"):
                    if not self.headers.get("Content-Type", "").startswith("application/json"):
                        self._refuse(method, 415, "Content-Type must be application/json")
                        return
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
                if self.headers.get("Authorization") != f"Bearer {stand_in.token}":
                    self._refuse(method, 401, "Unauthorized")
                    return
                status, answer = stand_in.route(method, self.path, body)
                if status >= 400:
                    stand_in.refused.append((method, self.path, status, answer.get("message", "")))
                self._answer(status, answer)

            def _refuse(self, method: str, status: int, message: str) -> None:
                stand_in.refused.append((method, self.path, status, message))
                self._answer(status, {"message": message})

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PUT(self) -> None:
                self._handle("PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> GrafanaStandIn:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- the documented API -------------------------------------------------------------------------
    def route(self, method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        if m := re.fullmatch(r"/api/folders/([\w-]+)", path):
            uid = m.group(1)
            if method == "GET":
                return (200, self.folders[uid]) if uid in self.folders else (404, {"message": "folder not found"})
            if method == "PUT":
                if uid not in self.folders:
                    return 404, {"message": "folder not found"}
                if not body.get("overwrite") and body.get("version") != self.folders[uid]["version"]:
                    return 412, {"message": "the folder has been changed by someone else"}
                self.folders[uid].update(title=body["title"], version=self.folders[uid]["version"] + 1)
                return 200, self.folders[uid]
        if path == "/api/folders" and method == "POST":
            if not body.get("title"):
                return 400, {"message": "folder title cannot be empty"}
            uid = body.get("uid") or f"f{len(self.folders)}"
            if uid in self.folders:
                return 409, {"message": "a folder with the same uid already exists"}
            self.folders[uid] = {"id": len(self.folders) + 1, "uid": uid, "title": body["title"], "version": 1}
            return 200, self.folders[uid]
        if m := re.fullmatch(r"/api/dashboards/uid/([\w-]+)", path):
            got = self.dashboards.get(m.group(1))
            if got is None:
                return 404, {"message": "Dashboard not found"}
            return 200, {"dashboard": {**got["dashboard"], "version": got["version"]},
                         "meta": {"folderUid": got["folderUid"], "version": got["version"]}}
        if path == "/api/dashboards/db" and method == "POST":
            return self._save_dashboard(body)
        if m := re.fullmatch(r"/api/datasources/uid/([\w-]+)", path):
            uid = m.group(1)
            if method == "GET":
                return (200, self.datasources[uid]) if uid in self.datasources else \
                    (404, {"message": "Data source not found"})
            if method == "PUT":
                self.datasources[uid] = {**body, "id": self.datasources[uid]["id"]}
                return 200, {"message": "Datasource updated", "datasource": self.datasources[uid]}
        if path == "/api/datasources" and method == "POST":
            if not body.get("name") or not body.get("type"):
                return 400, {"message": "a data source needs a name and a type"}
            self.datasources[body.get("uid", body["name"])] = {**body, "id": len(self.datasources) + 1}
            return 200, {"message": "Datasource added", "datasource": self.datasources[body.get("uid", body["name"])]}
        return 404, {"message": f"no route {method} {path}"}

    def _save_dashboard(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        board = body.get("dashboard")
        if not isinstance(board, dict) or not board.get("title"):
            return 400, {"message": "Dashboard title cannot be empty"}
        uid = board.get("uid")
        if not uid or len(uid) > 40:
            return 400, {"message": "Dashboard uid is missing or longer than 40 characters"}
        folder = body.get("folderUid", "")
        if folder and folder not in self.folders:
            return 400, {"message": "folder not found"}
        old = self.dashboards.get(uid)
        if old is not None and not body.get("overwrite") and board.get("version") != old["version"]:
            return 412, {"status": "version-mismatch", "message": "The dashboard has been changed by someone else"}
        if old is None and board.get("id") is not None:
            return 404, {"status": "not-found", "message": "Dashboard not found"}  # an id Grafana never gave
        version = (old["version"] + 1) if old else 1
        stored = {k: v for k, v in board.items() if k not in ("id", "version")}
        self.dashboards[uid] = {"dashboard": stored, "folderUid": folder, "version": version}
        return 200, {"id": len(self.dashboards), "uid": uid, "url": f"/d/{uid}/x", "status": "success",
                     "version": version, "slug": "x"}
