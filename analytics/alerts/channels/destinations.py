"""Where alert deliveries may go (issue 20 item 1): the public internet, and beyond it only what the
deployment allows.

An operator or regulator writes a subscription's URL or host; the platform then connects there from inside
the park's network. Unchecked, that reached ``file:///etc/passwd``, internal HTTP services and the cloud's
metadata address. So:

- **When a subscription is written** (:func:`check_url`, :func:`check_host`, :func:`vet`): ``http://`` or
  ``https://`` only; a robot channel (WeCom, DingTalk, Feishu/Lark) posts to its official host over https;
  a host given as an IP address, or a name resolving to one, must be a public address: loopback,
  link-local, private, carrier-grade NAT, multicast, unspecified and reserved addresses are refused,
  IPv4-mapped, NAT64, 6to4 and Teredo forms of them too.
- **At every send** (:func:`open_connection`, :func:`checked_address`): the name is resolved again and the
  connection goes to an address that passed the check, the one checked (a name that now resolves
  elsewhere - DNS rebinding - is refused). Redirects are not followed (analytics/alerts/channels/http.py).

``PARKMON_ALERT_ALLOW_HOSTS`` (parkmon.common.env) widens this for a deployment: IP addresses or CIDR
networks alerts may reach though not public (a park's own receiver at ``10.20.0.0/16``; ``127.0.0.1`` for
receivers on this machine), and host names trusted as they are (a robot proxy: any address it resolves
to). Errors name the host, never a URL's path or query (they carry robots' tokens).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from analytics.alerts.channels import DeliveryError
from parkmon.common.env import ALERT_ALLOW_HOSTS, alert_allow_hosts

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# the robots' official webhook hosts (their documentation: developer.work.weixin.qq.com, open.dingtalk.com,
# open.feishu.cn / open.larksuite.com custom bots)
OFFICIAL_HOSTS: dict[str, tuple[str, ...]] = {
    "wecom": ("qyapi.weixin.qq.com",),
    "dingtalk": ("oapi.dingtalk.com",),
    "feishu": ("open.feishu.cn", "open.larksuite.com"),
}
_HOSTNAME = re.compile(r"(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*")
# 2130706433, 0x7f.1, 127.1: inet_aton's old forms of an address, which a resolver turns into 127.0.0.1
_NUMERIC = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}")
# the well-known NAT64 prefix (the IPv4 address in the last 32 bits); the local-use 64:ff9b:1::/48 is
# refused as reserved, like the rest of ::/8
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: not public, not in is_private
_HOW = f"list it in {ALERT_ALLOW_HOSTS} if the deployment means alerts to go there (docs/security.md)"


@dataclass(frozen=True)
class Allowed:
    """The deployment's widening of the rules: host names trusted as they are, networks reachable."""

    names: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def from_env(cls) -> Allowed:
        names: set[str] = set()
        nets: list[Network] = []
        for entry in alert_allow_hosts():
            try:
                nets.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                name = entry.lower().rstrip(".")
                if not _HOSTNAME.fullmatch(name):
                    raise ValueError(f"{ALERT_ALLOW_HOSTS}: {entry[:80]!r} is neither an IP address, a CIDR "
                                     "network nor a host name") from None
                names.add(name)
        return cls(frozenset(names), tuple(nets))

    def reaches(self, ip: IP) -> bool:
        ip = _plain(ip)
        return any(ip in n for n in self.networks)


def _plain(ip: IP) -> IP:
    """An IPv4-mapped IPv6 address (::ffff:127.0.0.1) is its IPv4 address: that is where it connects."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _embedded(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address leads to: 6to4, Teredo's client."""
    return [a for a in (ip.sixtofour, ip.teredo[1] if ip.teredo else None) if a is not None]


def refusal(ip: IP) -> str | None:
    """Why ``ip`` is no public address (before the allow-list), or None."""
    ip = _plain(ip)
    if isinstance(ip, ipaddress.IPv6Address) and ip in _NAT64:
        # an IPv6-only network's way to IPv4 hosts (DNS64): judged by the IPv4 address it leads to
        via = refusal(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        return None if via is None else f"{via} (through NAT64 {ip})"
    for what, hit in (("unspecified", ip.is_unspecified), ("loopback", ip.is_loopback),
                      ("link-local", ip.is_link_local), ("multicast", ip.is_multicast),
                      ("private", ip.is_private), ("reserved", ip.is_reserved),
                      ("site-local", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
                      ("shared (carrier-grade NAT)", isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED)):
        if hit:
            return what
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in _embedded(ip):
            why = refusal(inner)
            if why:
                return f"{why} (embedded in {ip})"
    if not ip.is_global:
        return "non-public"
    return None


def _literal(host: str) -> IP | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


def check_host(host: str, field: str = "host", allowed: Allowed | None = None) -> str:
    """A host name or IP address as written (no DNS): its normal form, or ValueError saying what is wrong."""
    allowed = allowed or Allowed.from_env()
    name = host.strip().lower().rstrip(".")
    ip = _literal(name)
    if ip is not None:
        why = refusal(ip)
        if why and not allowed.reaches(ip):
            raise ValueError(f"{field}: {name} is a {why} address: alerts go to public addresses; {_HOW}")
        return str(ip)
    if not _HOSTNAME.fullmatch(name):
        raise ValueError(f"{field}: {host[:80]!r} is not a host name or IP address (an internationalised name: "
                         "give its xn-- form)")
    if _NUMERIC.fullmatch(name):
        raise ValueError(f"{field}: {name!r} is an address in an unusual form: write it as a.b.c.d")
    if (name == "localhost" or name.endswith(".localhost")) and name not in allowed.names:
        raise ValueError(f"{field}: {name} is this machine (loopback): {_HOW}")
    return name


@dataclass(frozen=True)
class Target:
    """A checked URL: what to connect to, and how to name it in an error (never its path or query)."""

    url: SplitResult
    host: str
    port: int

    @property
    def tls(self) -> bool:
        return self.url.scheme == "https"

    @property
    def where(self) -> str:
        return f"{self.url.scheme}://{self.host}:{self.port}"


def check_url(url: object, channel: str = "webhook", field: str = "url") -> Target:
    """A channel URL as written (no DNS): http(s) only, a robot's official host over https, no refused
    address given literally. ValueError says what is wrong."""
    if not isinstance(url, str) or not url:
        raise ValueError(f"{field}: give the receiver's URL, https://…")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValueError(f"{field}: the URL holds spaces or control characters")
    try:
        u = urlsplit(url)
        port = u.port
    except ValueError as exc:
        raise ValueError(f"{field}: not a URL ({exc})") from None
    scheme = u.scheme.lower()
    if scheme not in ("https", "http"):
        raise ValueError(f"{field}: scheme {scheme + ':' if scheme else 'none'} refused: alert URLs are https:// "
                         "(or http://)")
    if not u.hostname:
        raise ValueError(f"{field}: the URL names no host")
    allowed = Allowed.from_env()
    host = check_host(u.hostname, field, allowed)
    official = OFFICIAL_HOSTS.get(channel, ())
    if official:
        ip = _literal(host)
        listed = host in allowed.names or (ip is not None and allowed.reaches(ip))
        if host not in official and not listed:
            raise ValueError(f"{field}: {host} is not a {channel} robot host ({', '.join(official)}); a proxy or "
                             f"a test receiver: {_HOW}")
        if host in official and scheme != "https":
            raise ValueError(f"{field}: the robot's URL carries its token: https://{host}/… only")
    return Target(u._replace(scheme=scheme), host, port or (443 if scheme == "https" else 80))


def _resolve(host: str, port: int) -> list[tuple[socket.AddressFamily, tuple[object, ...]]]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [(family, tuple(addr)) for family, _t, _p, _c, addr in infos]


def vet(host: str, field: str = "host") -> None:
    """At write time: a name that resolves now must not resolve to a refused address (one that does not
    resolve yet is checked at every send)."""
    allowed = Allowed.from_env()
    name = check_host(host, field, allowed)
    if name in allowed.names or _literal(name) is not None:
        return
    try:
        infos = _resolve(name, 0)
    except (OSError, UnicodeError):
        return
    for _family, addr in infos:
        ip = ipaddress.ip_address(str(addr[0]).split("%")[0])
        why = refusal(ip)
        if why and not allowed.reaches(ip):
            raise ValueError(f"{field}: {name} resolves to a {why} address: alerts go to public addresses; {_HOW}")


def _addresses(host: str, port: int) -> list[tuple[socket.AddressFamily, tuple[object, ...]]]:
    """The addresses of ``host`` a delivery may connect to, resolved now; DeliveryError if none."""
    try:
        allowed = Allowed.from_env()
        name = check_host(host, "host", allowed)
        infos = _resolve(name, port)
    except ValueError as exc:
        raise DeliveryError(f"{host}: refused: {exc}") from None
    except (OSError, UnicodeError):
        infos = []
    if not infos:
        raise DeliveryError(f"{host}: the name does not resolve")
    if name in allowed.names:
        return infos
    ok, why = [], ""
    for family, addr in infos:
        ip = ipaddress.ip_address(str(addr[0]).split("%")[0])
        reason = refusal(ip)
        if reason and not allowed.reaches(ip):
            why = reason
            continue
        ok.append((family, addr))
    if not ok:
        raise DeliveryError(f"{host}: resolves to a {why} address, refused: alerts go to public addresses; {_HOW}")
    return ok


def checked_address(host: str, port: int) -> str:
    """An address of ``host`` that passed the check, for clients that connect by themselves (MQTT)."""
    return str(_addresses(host, port)[0][1][0])


def open_connection(host: str, port: int, timeout: float | None) -> socket.socket:
    """A TCP connection to ``host`` made only to an address that passed the check: what is checked is what
    is connected to."""
    last: OSError | None = None
    for family, addr in _addresses(host, port):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(addr)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    reason = "no answer in time" if isinstance(last, TimeoutError) else (
        getattr(last, "strerror", None) or type(last).__name__)
    raise DeliveryError(f"{host}:{port}: could not connect ({reason})")


@contextmanager
def cut_after(seconds: float, sock: Callable[[], socket.socket | None],
              fired: threading.Event | None = None) -> Iterator[threading.Event]:
    """Shut the connection down once ``seconds`` have passed, whatever the exchange is waiting for: a socket
    timeout bounds each read, not a receiver that sends a byte every few seconds (one slow receiver would
    hold every other subscription's alerts back). ``fired`` (yielded) is set when it did."""
    fired = fired if fired is not None else threading.Event()

    def cut() -> None:
        fired.set()
        s = sock()
        if s is not None:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(seconds, cut)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()
