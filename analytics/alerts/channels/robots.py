"""The group-robot webhooks Chinese organisations use, in their documented formats:

- 企业微信 WeCom: POST the robot's URL (``…/cgi-bin/webhook/send?key=…``) with
  ``{"msgtype": "markdown", "markdown": {"content": …}}``; ``errcode`` 0 is success.
- 钉钉 DingTalk: POST ``…/robot/send?access_token=…`` with ``{"msgtype": "markdown", "markdown": {"title",
  "text"}}``; with a 加签 secret the URL carries ``timestamp`` (ms) and ``sign`` = URL-encoded
  Base64(HMAC-SHA256(key=secret, msg="<timestamp>\\n<secret>")); ``errcode`` 0 is success.
- 飞书 Feishu: POST ``…/open-apis/bot/v2/hook/…`` with ``{"msg_type": "text", "content": {"text": …}}``; with a
  signature secret the body carries ``timestamp`` (s) and ``sign`` = Base64(HMAC-SHA256(key="<timestamp>\\n
  <secret>", msg="")); ``code`` (or the older ``StatusCode``) 0 is success.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse
from typing import Any

from analytics.alerts.channels import DeliveryError
from analytics.alerts.channels.http import post_json, require


def _ok(url: str, raw: bytes, *fields: str) -> None:
    try:
        answer = json.loads(raw or b"{}")
    except ValueError:
        raise DeliveryError(f"{url}: not a JSON answer: {raw[:200]!r}") from None
    code = next((answer[f] for f in fields if f in answer), 0)
    if code not in (0, "0"):
        raise DeliveryError(f"{url}: the robot refused the message: {answer}")


def _markdown(m: dict[str, Any]) -> str:
    return f"### {m['title_zh']}\n\n{m['text_zh']}\n\n> {m['text_en']}"


def dingtalk_sign(secret: str, timestamp_ms: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


def feishu_sign(secret: str, timestamp_s: str) -> str:
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class WeCom:
    name = "wecom"

    def check(self, config: dict[str, Any]) -> None:
        require(config, "url")

    def send(self, message: dict[str, Any], config: dict[str, Any]) -> None:
        url = config["url"]
        _ok(url, post_json(url, {"msgtype": "markdown", "markdown": {"content": _markdown(message)}}), "errcode")


class DingTalk:
    name = "dingtalk"

    def check(self, config: dict[str, Any]) -> None:
        require(config, "url")

    def send(self, message: dict[str, Any], config: dict[str, Any]) -> None:
        url = config["url"]
        if config.get("secret"):
            ts = str(int(time.time() * 1000))
            url += ("&" if "?" in url else "?") + f"timestamp={ts}&sign={dingtalk_sign(config['secret'], ts)}"
        body = {"msgtype": "markdown", "markdown": {"title": message["title_zh"], "text": _markdown(message)}}
        _ok(config["url"], post_json(url, body), "errcode")


class Feishu:
    name = "feishu"

    def check(self, config: dict[str, Any]) -> None:
        require(config, "url")

    def send(self, message: dict[str, Any], config: dict[str, Any]) -> None:
        body: dict[str, Any] = {"msg_type": "text",
                                "content": {"text": f"{message['text_zh']}\n{message['text_en']}"}}
        if config.get("secret"):
            ts = str(int(time.time()))
            body.update(timestamp=ts, sign=feishu_sign(config["secret"], ts))
        _ok(config["url"], post_json(config["url"], body), "code", "StatusCode")
