"""Formatting and classification of MAC and IP addresses (pure functions, no I/O)."""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache

BROADCAST_MAC = b"\xff\xff\xff\xff\xff\xff"


def mac_str(mac: bytes) -> str:
    """``b"\\x00\\x11..."`` -> ``"00:11:..."`` (lower case, colon separated)."""
    return mac.hex(":")


def mac_bytes(text: str) -> bytes:
    """Parse ``"00:11:22:33:44:55"`` (also ``-`` or no separators) into 6 bytes."""
    digits = text.replace(":", "").replace("-", "").replace(".", "")
    raw = bytes.fromhex(digits)
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {text!r}")
    return raw


def is_group_mac(mac: bytes) -> bool:
    """True for broadcast and multicast MACs (I/G bit set): never the address of one device."""
    return bool(mac[0] & 0x01)


def is_local_mac(mac: bytes) -> bool:
    """True for locally administered MACs (U/L bit set): randomised or assigned by software."""
    return bool(mac[0] & 0x02)


def is_null_mac(mac: bytes) -> bool:
    """True for 00:00:00:00:00:00."""
    return mac == b"\x00" * 6


@lru_cache(maxsize=65536)
def ip_str(ip: bytes) -> str:
    """4 or 16 raw bytes -> the canonical text form (RFC 5952 for IPv6)."""
    if len(ip) == 4:
        return f"{ip[0]}.{ip[1]}.{ip[2]}.{ip[3]}"
    return str(ipaddress.IPv6Address(ip))


@lru_cache(maxsize=65536)
def ip_bytes(text: str) -> bytes:
    """Text form of an IPv4 or IPv6 address -> its raw bytes."""
    try:  # the C parser first: ten times faster than ipaddress, and as strict for these forms
        return socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)
    except OSError:
        return ipaddress.ip_address(text).packed  # raises ValueError for what is not an address


@lru_cache(maxsize=65536)
def is_unicast_ip(ip: bytes) -> bool:
    """True when ``ip`` can be the address of one host: not unspecified, multicast, broadcast or reserved."""
    addr = ipaddress.ip_address(ip)
    if addr.is_unspecified or addr.is_multicast:
        return False
    return not (addr.version == 4 and (ip == b"\xff\xff\xff\xff" or ip[0] >= 240 or ip[0] == 0))


@lru_cache(maxsize=65536)
def is_link_local_ip(ip: bytes) -> bool:
    """True for addresses that cannot cross a router (169.254/16, fe80::/10)."""
    return ipaddress.ip_address(ip).is_link_local


@lru_cache(maxsize=65536)
def is_global_ip(ip: bytes) -> bool:
    """True for publicly routable (internet) addresses."""
    return ipaddress.ip_address(ip).is_global


@lru_cache(maxsize=65536)
def ip_sort_key(text: str) -> tuple[int, int]:
    """Sort key that orders IPv4 before IPv6 and numerically within a family."""
    raw = ip_bytes(text)
    return (4 if len(raw) == 4 else 6, int.from_bytes(raw, "big"))
