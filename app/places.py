"""Approximate places for IP addresses, offline: "Germany", "this network", or nothing.

geoip2fast ships its own country data (MaxMind GeoLite2, IPv4 and IPv6) inside the package,
so a lookup never leaves the process and no account with a data vendor is needed. The data is
loaded once per process, on the first lookup (about 0.15 s and 40 MB), and each answer is
memoised: a sessions page asks about the same few addresses again and again.
"""

from __future__ import annotations

import ipaddress
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

THIS_NETWORK = "this network"
# Addresses that never leave the person's own network; documentation and reserved ranges
# (which Python also calls private) are not among them: for those we know no place.
_LOCAL = [ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")]

_reader: Any = None
_loading = threading.Lock()


def _geoip() -> Any:
    global _reader
    with _loading:
        if _reader is None:
            import geoip2fast

            # The package's own file by its full path: a bare name is looked for in the
            # working directory first.
            data = Path(geoip2fast.__file__).parent / "geoip2fast-ipv6.dat.gz"
            _reader = geoip2fast.GeoIP2Fast(geoip2fast_data_file=str(data))
    return _reader


def is_loopback(host: str) -> bool:
    """Whether a host name (as a URL or a ``Host`` header has it, without its port) is this
    very computer: ``localhost``, 127.x.y.z or ::1. Browsers treat exactly those as secure
    over plain http."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache(maxsize=4096)
def place(address: str) -> str:
    """Where ``address`` is, as far as can be known offline; "" when nothing can be."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback or ip.is_link_local or any(ip in net for net in _LOCAL):
        return THIS_NETWORK
    if not ip.is_global:
        return ""
    found = _geoip().lookup(str(ip))
    code = getattr(found, "country_code", "")
    return found.country_name if len(code) == 2 and code.isalpha() else ""
