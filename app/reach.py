"""Where the people in a room reach this server: ``CONVSCOPE_PUBLIC_URL`` when it is set, otherwise the
addresses of this machine's network interfaces when the server listens on all of them (``--host 0.0.0.0``).
A page opened at 127.0.0.1 would otherwise put 127.0.0.1 on the projector, which no phone can reach."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import socket
import struct
from typing import Any

from app.config import Settings

ALL_INTERFACES = ("0.0.0.0", "::", "")
RESTART = "scripts/serve.sh --host 0.0.0.0"
_SIOCGIFADDR = 0x8915  # Linux: an interface's IPv4 address


def is_loopback(host: str) -> bool:
    """Is ``host`` (a name or an address, perhaps with a port or in brackets) this machine only?"""
    if host.startswith("["):  # [::1]:8000
        name = host[1 : host.find("]")]
    else:  # a name or an IPv4 address with a port; a bare IPv6 address has several colons
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def interface_addresses() -> list[str]:
    """This machine's IPv4 addresses that other machines may reach (loopback and link-local left out)."""
    found: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            with contextlib.suppress(OSError):  # an interface without an IPv4 address
                packed = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
                found.append(socket.inet_ntoa(packed[20:24]))
    if not found:
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))  # nothing is sent: this only picks the outgoing address
            found.append(probe.getsockname()[0])
    usable = [a for a in found if not (ipaddress.ip_address(a).is_loopback or ipaddress.ip_address(a).is_link_local)]
    return sorted(set(usable), key=lambda a: ipaddress.ip_address(a))


def reachable_bases(settings: Settings) -> list[str]:
    """Base URLs (``http://10.0.0.5:8000``) at which others reach this server, best first."""
    if settings.public_url:
        return [settings.public_url]
    if settings.host in ALL_INTERFACES:
        return [f"http://{address}:{settings.port}" for address in interface_addresses()]
    if is_loopback(settings.host):
        return []
    return [f"http://{settings.host}:{settings.port}"]


def room(settings: Settings) -> dict[str, Any]:
    """What the class page tells a lecturer about reaching the server: where it listens, the addresses
    others can use, and the command that makes it reachable when none can."""
    return {
        "public_url": settings.public_url,
        "listening": f"{settings.host}:{settings.port}",
        "join_bases": reachable_bases(settings),
        "restart": RESTART,
    }


def join_base(settings: Settings, request_base: str, request_host: str) -> str:
    """The base of a join link for a QR code: the public URL, the page's own address unless that is a
    loopback one, or else the first address others can reach (the page's own when there is none)."""
    if settings.public_url:
        return settings.public_url
    if is_loopback(request_host):
        bases = reachable_bases(settings)
        if bases:
            return bases[0]
    return request_base.rstrip("/")
