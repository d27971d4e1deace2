"""Real receivers on loopback for the alert channel tests: an HTTP server (webhooks, and stand-ins for the
WeCom / DingTalk / Feishu robot endpoints, which cannot be reached from here - they check each request
against the format and signature those services document, and answer as they do), and a real SMTP
server (aiosmtpd)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from analytics.alerts.channels.webhook import signature


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class HttpReceiver:
    """Records every POST; ``fail`` > 0 answers that many with 503 first. Robot paths check the request
    the way the real services do and answer in their format."""

    secrets: dict[str, str] = field(default_factory=dict)  # path prefix -> signing secret
    fail: int = 0
    got: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def start(self, port: int = 0) -> HttpReceiver:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_a: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                code, answer = outer._handle(self.path, dict(self.headers), raw)
                out = json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        if self.fail > 0:
            self.fail -= 1
            return 503, {"error": "down for maintenance"}
        body = json.loads(raw)
        problem = self._check(path, headers, raw, body)
        if problem:
            self.refused.append(problem)
            if path.startswith("/wecom") or path.startswith("/dingtalk"):
                return 200, {"errcode": 310000, "errmsg": problem}  # robots answer 200 with an error code
            if path.startswith("/feishu"):
                return 200, {"code": 19021, "msg": problem}
            return 401, {"error": problem}
        self.got.append(Received(path, headers, body))
        if path.startswith("/feishu"):
            return 200, {"code": 0, "msg": "success"}
        return 200, {"errcode": 0, "errmsg": "ok"}

    def _check(self, path: str, headers: dict[str, str], raw: bytes, body: dict[str, Any]) -> str | None:
        url = urllib.parse.urlparse(path)
        q = urllib.parse.parse_qs(url.query)
        if url.path.startswith("/hook"):
            secret = self.secrets["/hook"]
            want = signature(secret, headers["X-Parkmon-Timestamp"], raw)
            if not hmac.compare_digest(want, headers.get("X-Parkmon-Signature", "")):
                return "bad signature"
            if abs(time.time() - int(headers["X-Parkmon-Timestamp"])) > 300:
                return "stale timestamp"
        elif url.path.startswith("/wecom"):
            if "key" not in q or body.get("msgtype") != "markdown" or not body["markdown"].get("content"):
                return "invalid wecom message"
        elif url.path.startswith("/dingtalk"):
            secret = self.secrets["/dingtalk"]
            ts, sign = q["timestamp"][0], q["sign"][0]
            digest = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
            if sign != base64.b64encode(digest).decode() or "access_token" not in q:
                return "sign not match"
            if body.get("msgtype") != "markdown" or not {"title", "text"} <= set(body["markdown"]):
                return "invalid dingtalk message"
        elif url.path.startswith("/feishu"):
            secret = self.secrets["/feishu"]
            ts = body["timestamp"]
            digest = hmac.new(f"{ts}\n{secret}".encode(), b"", hashlib.sha256).digest()
            if body.get("sign") != base64.b64encode(digest).decode():
                return "sign match fail"
            if body.get("msg_type") != "text" or not body["content"].get("text"):
                return "invalid feishu message"
        return None

    def on(self, prefix: str) -> list[Received]:
        return [r for r in self.got if r.path.startswith(prefix)]


class MailBox:
    """A real SMTP server (aiosmtpd) on loopback keeping what it receives."""

    def __init__(self) -> None:
        self.mails: list[dict[str, str]] = []

        outer = self

        class Handler:
            async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
                m = message_from_bytes(envelope.content)
                body = m.get_payload(decode=True)
                outer.mails.append({"subject": str(make_header(decode_header(m["Subject"]))),
                                    "message_id": m["Message-ID"], "event": m["X-Parkmon-Event"],
                                    "to": ",".join(envelope.rcpt_tos),
                                    "body": body.decode() if isinstance(body, bytes) else str(body)})
                return "250 OK"

        with socket.socket() as s:  # a free port (the controller checks readiness by connecting to it)
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> MailBox:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
