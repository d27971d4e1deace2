"""E-mail over SMTP: subject the Chinese title, body Chinese then English. The Message-ID is made from
the idempotency key, so a mail client (or a test) sees a retried delivery as the same mail."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from typing import Any

from analytics.alerts.channels import DeliveryError
from analytics.alerts.channels.http import require


class Email:
    name = "email"

    def check(self, config: dict[str, Any]) -> None:
        require(config, "host", "from", "to")

    def send(self, message: dict[str, Any], config: dict[str, Any]) -> None:
        mail = EmailMessage()
        mail["Subject"] = message["title_zh"]
        mail["From"] = config["from"]
        to = config["to"]
        mail["To"] = ", ".join(to) if isinstance(to, list) else str(to)
        mail["Message-ID"] = f"<{message['id']}@parkmon>"
        mail["X-Parkmon-Event"] = message["event"]
        mail.set_content(f"{message['text_zh']}\n\n{message['text_en']}\n")
        try:
            with smtplib.SMTP(config["host"], int(config.get("port", 25)), timeout=10) as smtp:
                if config.get("starttls"):
                    smtp.starttls()
                if config.get("username"):
                    smtp.login(config["username"], config.get("password", ""))
                smtp.send_message(mail)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"smtp {config['host']}: {exc}") from None
