"""POSTing JSON over HTTP(S) for the webhook and robot channels (the standard library's client: one
request per message, a timeout, the receiver's answer in the error)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from analytics.alerts.channels import DeliveryError

TIMEOUT_S = 10.0


def post_json(url: str, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> bytes:
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            out: bytes = resp.read()
            return out
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"{url}: HTTP {exc.code} {exc.read()[:200].decode(errors='replace')}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"{url}: {getattr(exc, 'reason', exc)}") from None


def require(config: dict[str, Any], *fields: str) -> None:
    missing = [f for f in fields if not config.get(f)]
    if missing:
        raise ValueError(f"channel configuration needs {', '.join(missing)}")
