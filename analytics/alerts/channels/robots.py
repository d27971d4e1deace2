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
from analytics.alerts.channels.destinations import check_url
from analytics.alerts.channels.http import post_json, require


def _ok(url: str, raw: bytes, *fields: str) -> None:
    """The robot's own status in its JSON answer; an error names the host and the numeric code only (never
    the answer: issue 20 item 1)."""
    where = check_url(url, "webhook").where
    try:
        answer = json.loads(raw or b"{}")
    except ValueError:
        raise DeliveryError(f"{where}: the answer is not a robot's JSON") from None
    if not isinstance(answer, dict):
        raise DeliveryError(f"{where}: the answer is not a robot's JSON object")
    code = next((answer[f] for f in fields if f in answer), 0)
    if code not in (0, "0"):
        shown = code if isinstance(code, int) and not isinstance(code, bool) else "not a number"
        raise DeliveryError(f"{where}: the robot refused the message (code {shown}; the robot's documentation "
                            "says what it means)")


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
        check_url(config["url"], self.name)

    def send(self, message: dict[str, Any], config: dict[str, Any]) -> None:
        url = config["url"]
        body = {"msgtype": "markdown", "markdown": {"content": _markdown(message)}}
        _ok(url, post_json(url, body, channel=self.name), "errcode")


class DingTalk:
    name = "dingtalk"

    def check(self, config: dict[str, Any]) -> None:
        require(config, "url")
        check_url(config["url"], self.name)

    def send(self, message: dict[str, Any], config: dict[str, Any]) -> None:
        url = config["url"]
        if config.get("secret"):
            ts = str(int(time.time() * 1000))
            url += ("&" if "?" in url else "?") + f"timestamp={ts}&sign={dingtalk_sign(config['secret'], ts)}"
        body = {"msgtype": "markdown", "markdown": {"title": message["title_zh"], "text": _markdown(message)}}
        _ok(config["url"], post_json(url, body, channel=self.name), "errcode")


class Feishu:
    name = "feishu"

    def check(self, config: dict[str, Any]) -> None:
        require(config, "url")
        check_url(config["url"], self.name)

    def send(self, message: dict[str, Any], config: dict[str, Any]) -> None:
        body: dict[str, Any] = {"msg_type": "text",
                                "content": {"text": f"{message['text_zh']}\n{message['text_en']}"}}
        if config.get("secret"):
            ts = str(int(time.time()))
            body.update(timestamp=ts, sign=feishu_sign(config["secret"], ts))
        _ok(config["url"], post_json(config["url"], body, channel=self.name), "code", "StatusCode")
