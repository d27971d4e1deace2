"""POSTing JSON over HTTP(S) for the webhook and robot channels: the standard library's http.client, one
request per message, a timeout.

Hardened against a subscription pointed somewhere it should not go (issue 20 item 1): the URL is checked
again at every send and the connection is made only to an address that passed the check
(analytics/alerts/channels/destinations.py); redirects are not followed (a 3xx is a failed delivery: a
public receiver could otherwise bounce the request to an internal one); at most 64 KiB of the answer are
read, within 30 s for the whole exchange (a receiver trickling its answer would hold every other
subscription's alerts back), and only a robot's own JSON status is looked at. An error says the scheme,
host and port, the HTTP status and a fixed reason - never the answer's body, nor the URL's path or query
(robots' tokens)."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import threading
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from analytics.alerts.channels import DeliveryError
from analytics.alerts.channels.destinations import Target, check_url, cut_after, open_connection

TIMEOUT_S = 10.0  # each connect, send and read
DEADLINE_S = 30.0  # the whole exchange
MAX_ANSWER = 64 * 1024


class _Guarded(http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = open_connection(self.host, self.port, self.timeout)


class _GuardedTls(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, timeout: float) -> None:
        self._tls = ssl.create_default_context()  # certificates checked against the host name
        super().__init__(host, port, timeout=timeout, context=self._tls)

    def connect(self) -> None:
        sock = open_connection(self.host, self.port, self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def _phrase(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _failure(exc: Exception) -> str:
    """A fixed reason for a failed exchange: what the other side sent is never repeated."""
    if isinstance(exc, DeliveryError):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return f"no answer within {TIMEOUT_S:.0f} s"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS: the receiver's certificate is not trusted for this host"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or type(exc).__name__})"
    if isinstance(exc, http.client.HTTPException):
        return f"not an HTTP answer ({type(exc).__name__})"
    return getattr(exc, "strerror", None) or type(exc).__name__


def post_json(url: str, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None,
              channel: str = "webhook") -> bytes:
    """POST ``body`` to ``url``; the answer's first 64 KiB on a 2xx, else DeliveryError."""
    try:
        target: Target = check_url(url, channel)
    except ValueError as exc:  # the deployment's setting changed, or the row was written around the API
        raise DeliveryError(f"refused: {exc}") from None
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    u = target.url
    sent = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    if u.username is not None:  # https://user:password@host/…: HTTP basic authentication
        login = f"{unquote(u.username)}:{unquote(u.password or '')}".encode()
        sent["Authorization"] = "Basic " + base64.b64encode(login).decode()
    conn: http.client.HTTPConnection = (_GuardedTls(target.host, target.port, TIMEOUT_S) if target.tls
                                        else _Guarded(target.host, target.port, timeout=TIMEOUT_S))
    late = threading.Event()
    try:
        with cut_after(DEADLINE_S, lambda: conn.sock, late):
            conn.request("POST", (u.path or "/") + (f"?{u.query}" if u.query else ""), body=data, headers=sent)
            resp = conn.getresponse()
            status = resp.status
            answer = resp.read(MAX_ANSWER)
    except (OSError, http.client.HTTPException, DeliveryError) as exc:
        why = f"no complete answer within {DEADLINE_S:.0f} s" if late.is_set() else _failure(exc)
        raise DeliveryError(f"{target.where}: {why}") from None
    finally:
        conn.close()
    if late.is_set():  # cut off mid-answer: what was read may look whole (headers end at the cut)
        raise DeliveryError(f"{target.where}: no complete answer within {DEADLINE_S:.0f} s")
    if 300 <= status < 400:
        raise DeliveryError(f"{target.where}: {_phrase(status)}: redirects are not followed; give the final URL")
    if not 200 <= status < 300:
        raise DeliveryError(f"{target.where}: {_phrase(status)}")
    return answer


def require(config: dict[str, Any], *fields: str) -> None:
    missing = [f for f in fields if not config.get(f)]
    if missing:
        raise ValueError(f"channel configuration needs {', '.join(missing)}")
