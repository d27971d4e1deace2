"""Secrets: never in the logs, and no default or empty one in production (docs/security.md).

Never logged. :func:`protect_logs` registers the secrets a process was given (passwords, tokens, the
password inside a database URL, a token in an InfluxDB URL) and installs, once per process, a log
record factory that renders every record with them replaced by ``***`` (message, arguments, the
traceback of ``log.exception``) and exception hooks that do the same for an uncaught exception's
traceback. Whatever is not registered but looks like a secret is masked too: the password of any
``scheme://user:password@host`` and ``password=``, ``token=``, ``access_token=``, ``secret=``,
``key=``, ``sign=`` query values. :func:`mask_url` is for messages that show a URL on purpose;
``paths=True`` also masks a token carried as a path segment (a Feishu robot's ``…/hook/<token>``).
:func:`mask_config` shows a configuration (an alert subscription's) with its secrets masked, and
:func:`endpoint_secrets` gives a receiver URL's secrets to register.

No defaults in production. ``PARKMON_ENV=production`` (unset or ``development``: not production; any
other value is refused, so a typo cannot switch the checks off) makes the long-running entry points —
``parkmon ingest run``, ``parkmon api``, ``parkmon edge run`` — refuse to start when a secret is empty,
shorter than 8 characters, the user name again, or a well-known default (``change-me``, ``password``,
``TOKEN``, ``123456`` …), when MQTT has no user name or password, or when MQTT credentials would cross
the network to a host other than this machine without TLS. ``parkmon demo`` never checks: it is the
demo. The message names the setting and the reason, never the value.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

MASK = "***"
ENV = "PARKMON_ENV"
MIN_LENGTH = 8
# masked wherever they appear; shorter values are not (they would garble ordinary words and numbers)
_MIN_MASKED = 4
# URL schemes whose user part is a token, not a user name (ingest/store/mirrors/influx.py)
TOKEN_SCHEMES = ("influxdb", "influxdbs")
# secrets the processes may be given through the environment: masked too (deploy/parkmon.env.example)
ENV_SECRETS = ("PGPASSWORD", "PARKMON_MQTT_PASSWORD")
# compared with letters and digits only, lower case: "Change-Me!" is "changeme"
KNOWN_DEFAULTS = frozenset({
    "", "changeme", "changeit", "password", "passw0rd", "password1", "password123", "secret", "s3cret",
    "secret123", "parkmon", "admin", "admin123", "administrator", "public", "private", "root", "toor",
    "postgres", "postgresql", "mosquitto", "emqx", "test", "testing", "demo", "guest", "default", "token",
    "mytoken", "qwerty", "letmein", "welcome", "abc123", "123456", "1234567", "12345678", "123456789",
    "1234567890", "000000", "111111", "88888888", "66666666", "iloveyou",
})

_URL_PASSWORD = re.compile(r"(?P<pre>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@?#]*:)[^\s@/?#]+(?=@)")
_QUERY_SECRET = re.compile(
    r"(?P<pre>[?&](?:password|passwd|pwd|token|access_token|secret|key|sign|api_key|apikey)=)[^&\s#'\"]+",
    re.IGNORECASE)

# a path segment that is a credential: long, letters and digits mixed (UUIDs, robots' hook tokens)
_PATH_TOKEN = re.compile(r"(?<=/)(?=[A-Za-z0-9_-]*[0-9])(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{16,}(?=[/?#]|$)")
_URL_PARTS = re.compile(r"(?P<base>[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s]*)(?P<path>[^?#\s]*)(?P<rest>.*)", re.DOTALL)
# configuration keys whose values are secrets, whatever the channel (alert subscriptions' config)
SECRET_KEYS = frozenset({"secret", "password", "passwd", "pwd", "token", "access_token", "key", "sign",
                         "api_key", "apikey", "signing_secret"})

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()  # longest first
_installed = False
_previous_factory: Any = None
_previous_hooks: tuple[Any, Any] | None = None


# ---- never logged --------------------------------------------------------------------------------

def url_secrets(url: str | None) -> list[str]:
    """The secret parts of a URL: its password, an InfluxDB token, secret query values."""
    if not url:
        return []
    try:
        u = urlsplit(url)
    except ValueError:
        return []
    found: list[str] = []
    if u.password:
        found += [u.password, unquote(u.password)]
    if u.scheme in TOKEN_SCHEMES and u.username:
        found += [u.username, unquote(u.username)]
    for m in _QUERY_SECRET.finditer("?" + u.query):
        value = m.group(0)[len(m.group("pre")):]
        found += [value, unquote(value)]
    return found


def mask_url(url: str, paths: bool = False) -> str:
    """``url`` with its password, token and secret query values replaced by ``***``; ``paths``: path
    segments that look like tokens too."""
    if paths and (parts := _URL_PARTS.fullmatch(url)) is not None:
        url = parts["base"] + _PATH_TOKEN.sub(MASK, parts["path"]) + parts["rest"]
    masked = _QUERY_SECRET.sub(lambda m: m.group("pre") + MASK, _URL_PASSWORD.sub(lambda m: m.group("pre") + MASK, url))
    scheme, sep, rest = masked.partition("://")
    if sep and scheme in TOKEN_SCHEMES:
        netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
        if "@" in netloc and ":" not in netloc.rsplit("@", 1)[0]:
            masked = f"{scheme}://{MASK}@{rest.split('@', 1)[1]}"
    return masked


def endpoint_secrets(url: str | None) -> list[str]:
    """A receiver URL's secrets: :func:`url_secrets` and the path segments that look like tokens."""
    if not url:
        return []
    parts = _URL_PARTS.fullmatch(url)
    return url_secrets(url) + ([] if parts is None else _PATH_TOKEN.findall(parts["path"]))


def mask_config(config: Any) -> Any:
    """A configuration as it may be shown, logged or audited: values under secret keys (:data:`SECRET_KEYS`)
    ``***``, URLs masked with their path tokens, nested mappings and lists alike."""
    if isinstance(config, dict):
        return {k: MASK if isinstance(k, str) and k.lower() in SECRET_KEYS and v not in (None, "")
                else mask_config(v) for k, v in config.items()}
    if isinstance(config, list):
        return [mask_config(v) for v in config]
    if isinstance(config, str) and "://" in config:
        return mask_url(config, paths=True)
    return config


def redact(text: str) -> str:
    """``text`` with every registered secret, URL password and secret query value replaced by ``***``."""
    for s in _secrets:
        if s in text:
            text = text.replace(s, MASK)
    if "://" in text:
        text = _URL_PASSWORD.sub(lambda m: m.group("pre") + MASK, text)
    if "=" in text:
        text = _QUERY_SECRET.sub(lambda m: m.group("pre") + MASK, text)
    return text


def add_secrets(values: Iterable[str | None] = (), urls: Iterable[str | None] = ()) -> None:
    """Register secrets to mask from now on (values shorter than 4 characters are not masked)."""
    global _secrets
    new = {v for v in values if v and len(v) >= _MIN_MASKED}
    new |= {v for u in urls for v in url_secrets(u) if len(v) >= _MIN_MASKED}
    with _lock:
        _secrets = tuple(sorted(set(_secrets) | new, key=len, reverse=True))


def _scrub(record: logging.LogRecord) -> None:
    try:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        elif record.msg is not None and not record.args:
            record.msg = redact(str(record.msg))
        args = record.args
        if isinstance(args, tuple) and args:
            # argument by argument keeps the shape formatters rely on (uvicorn's access log unpacks it)
            record.args = tuple(a if isinstance(a, int | float | bool) or a is None
                                else redact(a) if isinstance(a, str) else _scrub_object(a) for a in args)
        elif isinstance(args, dict) and args:
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in args.items()}
        rendered = record.getMessage()
        clean = redact(rendered)
        if clean != rendered:  # a secret spanning the template and an argument: render it here
            record.msg, record.args = clean, ()
    except Exception:  # a record we cannot render: leave it to the handler, as logging would
        pass
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def _scrub_object(a: object) -> object:
    text = str(a)
    clean = redact(text)
    return a if clean == text else clean


def _factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record: logging.LogRecord = _previous_factory(*args, **kwargs)
    _scrub(record)
    return record


def _excepthook(t: type[BaseException], v: BaseException, tb: TracebackType | None) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(t, v, tb))))


def _thread_excepthook(a: threading.ExceptHookArgs) -> None:
    if a.exc_type is SystemExit:
        return
    name = a.thread.name if a.thread is not None else "?"
    sys.stderr.write(redact(f"Exception in thread {name}:\n"
                            + "".join(traceback.format_exception(a.exc_type, a.exc_value, a.exc_traceback))))


def protect_logs(values: Iterable[str | None] = (), urls: Iterable[str | None] = ()) -> None:
    """Register secrets and make sure no log record or uncaught traceback of this process shows them."""
    global _installed, _previous_factory, _previous_hooks
    add_secrets([*values, *(os.environ.get(name) for name in ENV_SECRETS)], urls)
    with _lock:
        if _installed:
            return
        _installed = True
        _previous_factory = logging.getLogRecordFactory()
        _previous_hooks = (sys.excepthook, threading.excepthook)
    logging.setLogRecordFactory(_factory)
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook


def _uninstall() -> None:
    """Undo :func:`protect_logs` (tests)."""
    global _installed, _secrets
    with _lock:
        if _installed and _previous_hooks is not None:
            logging.setLogRecordFactory(_previous_factory)
            sys.excepthook, threading.excepthook = _previous_hooks
        _installed = False
        _secrets = ()


# ---- no defaults in production --------------------------------------------------------------------

def environment() -> Literal["production", "development"]:
    raw = os.environ.get(ENV, "").strip().lower()
    if raw in ("", "development"):
        return "development"
    if raw == "production":
        return "production"
    raise SystemExit(f"{ENV}={raw!r} is neither production nor development (unset means development); "
                     "see docs/security.md")


def weak_secret(value: str | None, username: str | None = None) -> str | None:
    """Why ``value`` is unfit for production, or None."""
    if not value:
        return "is empty or not set"
    if re.sub(r"[^a-z0-9]", "", value.lower()) in KNOWN_DEFAULTS:
        return "is a well-known default"
    if username and value.lower() == username.lower():
        return "is the user name again"
    if len(set(value)) == 1:
        return "is one character repeated"
    if len(value) < MIN_LENGTH:
        return f"is shorter than {MIN_LENGTH} characters"
    return None


@dataclass(frozen=True)
class Secret:
    """A secret setting to check: ``what`` names it for the operator (never the value)."""

    what: str
    value: str | None
    username: str | None = None
    required: bool = True  # False: only checked when set (e.g. a database URL may use peer authentication)


def url_checks(what: str, url: str | None) -> list[Secret]:
    """The secrets inside a URL, to check: its password (if it has one), an InfluxDB token."""
    if not url:
        return []
    try:
        u = urlsplit(url)
    except ValueError:
        return []
    found: list[Secret] = []
    if u.password is not None:
        found.append(Secret(f"the password in {what} {mask_url(url)}", unquote(u.password),
                            unquote(u.username or "")))
    elif u.scheme.startswith("postgresql") and os.environ.get("PGPASSWORD") is not None:
        # libpq takes the password from PGPASSWORD when the URL has none (deploy/parkmon.env.example)
        found.append(Secret(f"PGPASSWORD (for {what} {mask_url(url)})", os.environ["PGPASSWORD"],
                            unquote(u.username or "")))
    if u.scheme in TOKEN_SCHEMES:
        found.append(Secret(f"the token in {what} {mask_url(url)}", unquote(u.username or "")))
    return found


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def mqtt_checks(host: str, username: str | None, password: str | None, tls: bool,
                where: str = "MQTT") -> tuple[list[Secret], list[str]]:
    """What production asks of an MQTT login: a user name, a strong password, TLS beyond this machine."""
    problems = [] if username else [f"{where}: no user name (the broker must not take anonymous clients)"]
    if not tls and not is_loopback(host):
        problems.append(f"{where}: no TLS to {host}, the password would cross the network in clear "
                        "(give the CA file; docs/security.md)")
    return [Secret(f"{where}: the password", password, username)], problems


def check_production(command: str, secrets: Iterable[Secret] = (), problems: Iterable[str] = ()) -> None:
    """In production, refuse to start (SystemExit) over any weak or missing secret or listed problem."""
    if environment() != "production":
        return
    found = list(problems)
    for s in secrets:
        if s.value or s.required:
            why = weak_secret(s.value, s.username)
            if why:
                found.append(f"{s.what} {why}")
    if found:
        lines = "\n".join(f"  - {p}" for p in found)
        raise SystemExit(f"{command}: refusing to start with {ENV}=production:\n{lines}\n"
                         "Set real secrets (parkmon ingest mqtt-auth generates MQTT ones); docs/security.md")
