"""What keeps the review page local and its writes deliberate: loopback hosts, the token.

The server binds a loopback address unless told ``allow_remote``; every API call carries the
token printed at start (the page gets it in its own HTML, which only a token holder can load),
and writes must send it in a header, which a page of another site cannot do.

>>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
(True, True, False)
>>> host_header_name("127.0.0.1:8765"), host_header_name("[::1]:80"), host_header_name("x")
('127.0.0.1', '::1', 'x')
>>> same_token("abc", "abc"), same_token("abc", "abd"), same_token(None, "abc")
(True, False, False)
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets

from harmonize.core.errors import InputError

TOKEN_HEADER = "X-Harmonize-Token"
TOKEN_COOKIE = "harmonize_token"
LOOPBACK_NAMES = ("localhost",)


def new_token() -> str:
    """A fresh random token for one server run."""
    return secrets.token_urlsafe(24)


def is_loopback(host: str) -> bool:
    """True for an address (or ``localhost``) that only this machine can reach."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_host(host: str, allow_remote: bool) -> str:
    """``host`` if the server may bind it; a non-loopback one needs ``allow_remote``."""
    if not host.strip():
        raise InputError("{host} is empty: give an address such as 127.0.0.1", params=("host",))
    if not is_loopback(host) and not allow_remote:
        raise InputError(
            f"{{host}} {host} is reachable from other machines: the review page can change "
            "the workspace's decisions. Bind 127.0.0.1, or pass {allow_remote} to serve it "
            "on the network anyway (every write still needs the token).",
            params=("host", "allow_remote"),
        )
    return host


def host_header_name(value: str) -> str:
    """The host name of an HTTP ``Host`` header, without port or IPv6 brackets."""
    value = value.strip()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def same_token(given: str | None, token: str) -> bool:
    """Constant-time comparison of a presented token with the server's."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())
