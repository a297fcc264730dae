"""Acceptance: device MACs and OUI vendors in the corpus LLDP/CDP/DHCP/SMB captures.

Expectations were written from the captures (checked with tshark's eth.src and its manuf resolution).
"""

from __future__ import annotations

import pytest

from tests.conftest import need_corpus_file
from wardwatch.engine import analyze

EXPECTED: dict[str, dict[str, tuple[str | None, tuple[str, ...], tuple[str, ...]]]] = {
    # file: {mac: (vendor, ips, hostnames)}
    "arkime--wireshark-lldp.pcap": {
        "00:01:30:f9:ad:a0": ("Extreme Networks Headquarters", (), ("Summit300-48",)),  # LLDP system name
        "00:04:96:1f:a7:26": ("Extreme Networks Headquarters", (), ()),
        # ProCurve Switch 2600-8-PWR port MAC; the IP is its LLDP management address
        "00:13:21:57:ca:7f": ("Hewlett Packard", ("15.255.122.148",), ("ProCurve Switch 2600-8-PWR",)),
    },
    "zeek--lldp.pcap": {"00:22:2d:81:db:10": ("SMC Networks Inc.", ("192.168.2.10",), ("SMCGS8P-Smart",))},
    "zeek--cdp-v1.pcap": {"00:e0:1e:d5:d5:15": ("Cisco Systems, Inc", ("192.168.10.1",), ("R1",))},  # CDP
    "suricata-verify--dhcp-eve-extended.pcap": {
        "00:11:32:17:49:f0": ("Synology Incorporated", ("10.16.1.4",), ("nas1",)),
        "a0:36:9f:4c:4c:28": ("Intel Corporate", ("10.16.1.1",), ()),
    },
    "suricata-verify--dhcp-eve-extended-option-60.pcap": {
        "28:cf:da:dc:8d:76": ("Apple, Inc.", (), ("NicksMacBook",)),
    },
    "zeek--dhcp_dhcp_time_and_nameserver.pcap": {
        "00:90:f5:91:cd:1f": ("CLEVO CO.", ("192.168.15.250",), ("pop-os",)),
        "00:1f:d0:85:d9:8b": ("GIGA-BYTE TECHNOLOGY CO.,LTD.", ("192.168.15.101",), ()),
    },
    "arkime--wireshark-dhcp.pcap": {
        "00:0b:82:01:fc:42": ("Grandstream Networks, Inc.", ("192.168.0.10",), ()),
        "00:08:74:ad:f1:9b": ("Dell Inc.", ("192.168.0.1",), ()),
    },
    "arkime--wireshark-smb-on-windows10.pcap": {
        # host names from NTLMSSP (challenge target info, authenticate workstation)
        "00:0c:29:03:df:ad": ("VMware, Inc.", ("192.168.199.132",), ("desktop-2aefm7g",)),
        "00:0c:29:61:f5:5f": ("VMware, Inc.", ("192.168.199.133",), ("desktop-v1fa0uq",)),
        "00:50:56:c0:00:01": ("VMware, Inc.", ("192.168.199.1",), ("scv",)),
    },
    "zeek--smb_smb311.pcap": {
        # 52:54:00 is locally administered (QEMU/KVM convention): no registered vendor
        "52:54:00:07:03:2d": ("QEMU/KVM virtual NIC", ("10.160.67.244",), ("ad.foo.test", "ad")),
        "52:55:00:d1:44:45": (None, ("192.168.100.168",), ()),
    },
}


@pytest.mark.corpus
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_devices(name: str) -> None:
    path = need_corpus_file(name)
    devices = {d.macs[0]: d for d in analyze([path]).analysis.devices if d.macs}
    assert set(devices) == set(EXPECTED[name])
    for mac, (vendor, ips, hostnames) in EXPECTED[name].items():
        d = devices[mac]
        assert (d.vendor, d.ips, d.hostnames) == (vendor, ips, hostnames), mac
        assert d.mac_randomized == mac.startswith("52:5")
        assert any(e.attribute == "mac" and e.value == mac for e in d.evidence)
        if vendor and not d.mac_randomized:  # the vendor shown is the OUI's (catalog rules may name it too)
            (ev,) = [e for e in d.evidence if e.attribute == "vendor" and e.value == vendor]
            assert ev.source == "oui" and ev.packet is not None


@pytest.mark.corpus
def test_dhcpv6_and_nbns_corpus() -> None:
    devices = analyze([need_corpus_file("arkime--wireshark-dhcpv6.pcap")]).analysis.devices
    assert {d.macs[0]: d.ips for d in devices} == {
        "08:00:27:d4:10:bb": ("fe80::a00:27ff:fed4:10bb",),
        "08:00:27:fe:8f:95": ("fe80::a00:27ff:fefe:8f95",),
    }
    nbns = analyze([need_corpus_file("arkime--nbns.pcap")]).analysis.devices
    named = {d.macs[0] if d.macs else d.id: d.hostnames for d in nbns if d.hostnames}
    assert named == {"00:50:56:33:78:9e": ("MDJR98",)}


@pytest.mark.corpus
def test_mdns_corpus_names() -> None:
    devices = analyze([need_corpus_file("zeek--dns_mdns.pcap")]).analysis.devices
    names = {n for d in devices for n in d.hostnames}
    assert "johanna-QEMU-Virtual-Machine.local" in names
