"""The guard that keeps webhooks from reaching Docora's own network (SSRF), as pure functions.

A base_url is checked at onboarding on what its host resolves to then, and every delivery checks the
address it actually connects to with `check_address`, because DNS may answer differently later.
`allow_private` lifts every check; it exists for local development and tests only.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from urllib.parse import SplitResult, urlsplit

from chalicelib import errors

_MAX_URL_LENGTH = 2048
_URL_CHARACTERS = re.compile(r"[\x21-\x5b\x5d-\x7e]+")
# WHATWG URL parsing treats a host whose last label is a number as an IPv4 address, and libc and browsers
# disagree on spellings such as `0177.0.0.1` or `127.1`; only the canonical dotted quad is accepted.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")
_LOCAL_NAMES = ("localhost",)
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")

_BLOCKED_V4 = tuple(
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, where cloud metadata services live
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast, deprecated
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
    )
)
# Everything outside 2000::/3 is loopback, unspecified, unique-local, link-local, site-local, multicast,
# discard (100::/64), NAT64 local-use (64:ff9b:1::/48) or unassigned, so one range refuses them all.
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_BLOCKED_V6 = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "2001::/23",  # IETF protocol assignments: Teredo, benchmarking, ORCHID and the like
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
    )
)
_MAPPED_V6 = ipaddress.IPv6Network("::ffff:0:0/96")
_COMPATIBLE_V6 = ipaddress.IPv6Network("::/96")
_NAT64_V6 = ipaddress.IPv6Network("64:ff9b::/96")
_SIXTOFOUR_V6 = ipaddress.IPv6Network("2002::/16")


def check_webhook_url(
    url: str, *, resolve: Callable[[str], list[str]], allow_private: bool, field: str = "base_url"
) -> str:
    """Return `url` without trailing slashes when it may receive webhooks; raise InvalidInput naming `field`."""
    parts = _split(url, allow_private=allow_private, field=field)
    host = parts.hostname
    if not host:
        raise errors.InvalidInput.field(field, "must include a host name")
    if not allow_private:
        _check_host(host, resolve=resolve, field=field)
    return url.rstrip("/")


def _split(url: str, *, allow_private: bool, field: str) -> SplitResult:
    if not isinstance(url, str) or len(url) > _MAX_URL_LENGTH or not _URL_CHARACTERS.fullmatch(url):
        raise errors.InvalidInput.field(field, "must be an https:// URL without spaces or backslashes")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it is what validates it
    except ValueError:
        raise errors.InvalidInput.field(field, "must be a well-formed URL") from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise errors.InvalidInput.field(field, "must start with https://")
    if "@" in parts.netloc:
        raise errors.InvalidInput.field(field, "must not contain a user name or password")
    if "?" in url or "#" in url:
        # Event paths are appended to base_url, which a query or fragment would swallow.
        raise errors.InvalidInput.field(field, "must not have a query or a fragment")
    return parts


def _check_host(host: str, *, resolve: Callable[[str], list[str]], field: str) -> None:
    name = host.lower().removesuffix(".")
    if name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES):
        raise errors.InvalidInput.field(field, "must not point at a local host name")
    if ":" in name:
        addresses = [name]
    elif _NUMERIC_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
        if not _is_dotted_quad(host):
            raise errors.InvalidInput.field(field, "must write an IPv4 address as four decimal numbers")
        addresses = [host]
    else:
        addresses = resolve(host)
    if not addresses:
        raise errors.InvalidInput.field(field, "host name does not resolve")
    if not all(is_public_address(address) for address in addresses):
        raise errors.InvalidInput.field(field, "must not point at a private, loopback or reserved address")


def _is_dotted_quad(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def check_address(ip: str, *, allow_private: bool) -> None:
    """Refuse, at connect time, an address that is not public; deliveries call this on the resolved address."""
    if not allow_private and not is_public_address(ip):
        raise errors.Forbidden("the webhook host resolves to an address that is not public")


def is_public_address(ip: str) -> bool:
    """Whether `ip` is a public unicast address; anything unparsable is not."""
    if "%" in ip:
        # A zone id scopes the address to one of our own interfaces, which is never a public target.
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return _is_public_v4(address)
    embedded = _embedded_v4(address)
    if embedded is not None:
        return _is_public_v4(embedded)
    return address in _GLOBAL_UNICAST_V6 and not any(address in net for net in _BLOCKED_V6) and address.is_global


def _is_public_v4(address: ipaddress.IPv4Address) -> bool:
    # Python's is_global misses multicast, hence the explicit list; both must agree.
    return not any(address in net for net in _BLOCKED_V4) and address.is_global


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form stands for, since a connection to it reaches that IPv4 host."""
    if address in _MAPPED_V6 or address in _COMPATIBLE_V6 or address in _NAT64_V6:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIXTOFOUR_V6:
        return address.sixtofour
    return None
