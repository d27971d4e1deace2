"""E-mail over SMTP: subject the Chinese title, body Chinese then English. The Message-ID is made from
the idempotency key, so a mail client (or a test) sees a retried delivery as the same mail.

The SMTP host is checked like every alert destination (analytics/alerts/channels/destinations.py: a public
address unless the deployment allows more) when written and at every send, where the connection goes to
the address checked; an error names the host and the server's numeric reply code, never its text."""

from __future__ import annotations

import smtplib
import socket
from email.message import EmailMessage
from typing import Any

from analytics.alerts.channels import DeliveryError
from analytics.alerts.channels.destinations import check_host, cut_after, open_connection
from analytics.alerts.channels.http import require


class _GuardedSmtp(smtplib.SMTP):
    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return open_connection(host, port, timeout)


def _port(config: dict[str, Any]) -> int:
    port = config.get("port", 25)
    if isinstance(port, bool) or not isinstance(port, int | str) or not str(port).isdigit() \
            or not 1 <= int(port) <= 65535:
        raise ValueError("port: a TCP port, 1 to 65535")
    return int(port)


def _failure(exc: Exception) -> str:
    if isinstance(exc, DeliveryError):
        return str(exc)
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"the server refused ({exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return f"the server refused {len(exc.recipients)} recipient(s)"
    if isinstance(exc, TimeoutError):
        return "no answer within 10 s"
    return getattr(exc, "strerror", None) or type(exc).__name__


class Email:
    name = "email"

    def check(self, config: dict[str, Any]) -> None:
        require(config, "host", "from", "to")
        if not isinstance(config["host"], str):
            raise ValueError("host: the SMTP server's host name or address")
        check_host(config["host"])
        _port(config)

    def send(self, message: dict[str, Any], config: dict[str, Any]) -> None:
        mail = EmailMessage()
        mail["Subject"] = message["title_zh"]
        mail["From"] = config["from"]
        to = config["to"]
        mail["To"] = ", ".join(to) if isinstance(to, list) else str(to)
        mail["Message-ID"] = f"<{message['id']}@parkmon>"
        mail["X-Parkmon-Event"] = message["event"]
        mail.set_content(f"{message['text_zh']}\n\n{message['text_en']}\n")
        host = str(config["host"])
        try:
            with _GuardedSmtp(host, _port(config), timeout=10) as smtp, \
                    cut_after(60, lambda: getattr(smtp, "sock", None)):  # the whole exchange
                if config.get("starttls"):
                    smtp.starttls()
                if config.get("username"):
                    smtp.login(config["username"], config.get("password", ""))
                smtp.send_message(mail)
        except (smtplib.SMTPException, OSError, ValueError, DeliveryError) as exc:
            raise DeliveryError(f"smtp {host}: {_failure(exc)}") from None
