"""The API's outer guard, a pure ASGI middleware (issue 20 items 12, 18, 19): before any route reads a body,

- a body larger than ``max_body`` bytes is refused with 413 — by its Content-Length, and by counting the bytes
  of a streamed (chunked) body as they arrive, so nothing larger is ever buffered, parsed or spooled;
- a request that carries a body is authenticated first (with authentication on): an anonymous 200 MB JSON
  body or multipart upload gets its 401 unread, and is counted (:class:`Refusals`), not audited row by row;
- every answer carries the browser hardening headers (:data:`SECURITY_HEADERS`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

MAX_BODY = 32 * 1024 * 1024  # bytes; the largest real body is a records import (an Excel or CSV file)
# the board loads only its own script and ECharts from /static; no inline script, no framing by other sites
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                 b"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                                 b"base-uri 'none'; form-action 'self'; object-src 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
# writes that need no token: the board's sign-in takes the token in its body
OPEN_WRITES = frozenset({"/board/sign-in", "/board/sign-out"})


class Refusals:
    """Unauthenticated write attempts, counted: an audit row each let anyone flood the audit log (item 19).
    One log line a minute at most says how many came since the last."""

    def __init__(self, log_every_s: float = 60.0) -> None:
        self.total = 0
        self._since_log = 0
        self._logged = 0.0
        self._every = log_every_s
        self._lock = threading.Lock()

    def add(self, method: str, path: str) -> None:
        with self._lock:
            self.total += 1
            self._since_log += 1
            now = time.monotonic()
            if now - self._logged < self._every:
                return
            n, self._since_log, self._logged = self._since_log, 0, now
        log.warning("%d unauthenticated write attempt(s) refused (latest: %s %s; %d since start)",
                    n, method, path[:200], self.total)


class TooLarge(HTTPException):
    """A streamed body past the limit: raised from ``receive``, answered 413 by FastAPI (or by the guard)."""


class Guard:
    """See the module's docstring. ``app.state`` must hold ``auth`` (None: authentication off) and
    ``refusals``."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_headers(send)
        headers = {k.lower(): v for k, v in scope["headers"]}
        length = headers.get(b"content-length")
        has_body = length not in (None, b"0") or b"chunked" in headers.get(b"transfer-encoding", b"")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await self._refuse(send, 413, self._too_large())
            return
        if has_body and scope["path"] not in OPEN_WRITES:
            auth = scope["app"].state.auth
            if auth is not None:
                try:
                    await run_in_threadpool(auth.principal, Request(scope))
                except HTTPException as exc:
                    if exc.status_code == 401:
                        scope["app"].state.refusals.add(scope["method"], scope["path"])
                    await self._refuse(send, exc.status_code, str(exc.detail), exc.headers)
                    return
        seen = 0
        state = {"started": False, "over": False}

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    state["over"] = True
                    raise TooLarge(413, self._too_large())
            return message

        async def tracked(message: Message) -> None:
            # FastAPI turns an error while reading the body into its own 400: past the limit, answer 413
            if state["over"]:
                if message["type"] == "http.response.start" and not state["started"]:
                    state["started"] = True
                    await self._refuse(send, 413, self._too_large())
                return
            state["started"] = state["started"] or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except TooLarge:
            if not state["started"]:
                state["started"] = True
                await self._refuse(send, 413, self._too_large())

    def _too_large(self) -> str:
        return (f"the request body is larger than {self.max_body} bytes, the API's limit: send less (a smaller "
                "file, or the records in parts)")

    @staticmethod
    async def _refuse(send: Send, status: int, detail: str, extra: Mapping[str, str] | None = None) -> None:
        body = json.dumps({"detail": detail}, ensure_ascii=False).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _with_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            have = {k.lower() for k, _ in message.get("headers", [])}
            message["headers"] = [*message.get("headers", []), *(h for h in SECURITY_HEADERS if h[0] not in have)]
        await send(message)
    return wrapped


def counters(app: Any) -> dict[str, int]:
    """What an administrator's health check shows of the guard."""
    return {"refused_unauthenticated_writes": app.state.refusals.total}
