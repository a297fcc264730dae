"""Address helpers: the fast C parsers agree with ``ipaddress`` and refuse what it refuses."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wardwatch.model.addr import ip_bytes, ip_sort_key, ip_str


@given(st.ip_addresses())
def test_ip_bytes_round_trips_every_address(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    assert ip_bytes(str(addr)) == addr.packed
    assert ip_bytes(ip_str(addr.packed)) == addr.packed
    assert ip_sort_key(str(addr)) == (addr.version, int(addr))


def test_ip_bytes_accepts_scoped_ipv6_like_ipaddress() -> None:
    assert ip_bytes("fe80::1%eth0") == ipaddress.ip_address("fe80::1").packed


@pytest.mark.parametrize("text", ["01.2.3.4", "1.2.3", "1.2.3.4 ", "256.1.1.1", "::g", "", "host"])
def test_ip_bytes_refuses_what_is_not_an_address(text: str) -> None:
    with pytest.raises(ValueError):
        ip_bytes(text)


def test_ipv4_sorts_before_ipv6_and_numerically() -> None:
    texts = ["::1", "10.0.0.10", "10.0.0.9", "0.0.0.1"]
    assert sorted(texts, key=ip_sort_key) == ["0.0.0.1", "10.0.0.9", "10.0.0.10", "::1"]
