"""The base risk rules, always on. Each says what it flags, why it matters for a clinical network, and the fix.

Severities follow what an attacker gains and how directly patients are affected: patient data or credentials
readable by anyone on the segment and a medical device reachable from the internet are high or critical; legacy
protocols and management in clear are medium (they are the way in, not yet the harm).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from wardwatch.model.event import EventKind
from wardwatch.model.finding import Finding, Severity
from wardwatch.model.flow import Edge
from wardwatch.model.inventory import Device, DeviceId, Evidence
from wardwatch.risk.interface import RiskContext, Rule, finding_id

#: Protocol versions that are a legacy signal (``protocol`` evidence from the SMB, TLS and SNMP dissectors).
LEGACY_PROTOCOLS = frozenset({"smb:smb1-only", "smb:NT LM 0.12", "ssl:3.0", "tls:1.0", "tls:1.1", "snmp:v1"})
#: Windows releases out of Microsoft's support, as ``smb.windows_name`` and SMB1 native OS strings name them.
LEGACY_WINDOWS = ("Windows 2000", "Windows XP", "Windows Vista", "Windows 7", "Server 2003", "Server 2008",
                  "Windows 8 ", "Windows 8.1", "Windows 5.", "Windows NT 4", "Windows Server 2003")  # fmt: skip
#: Management protocols that carry credentials and commands in clear: (IP protocol, responder port) -> name.
CLEARTEXT_MANAGEMENT = {
    (6, 23): "Telnet", (6, 21): "FTP", (6, 512): "rexec", (6, 513): "rlogin", (6, 514): "rsh", (17, 69): "TFTP",
    (6, 5900): "VNC",
}  # fmt: skip


def _line(e: Evidence) -> str:
    count = f" ×{e.count}" if e.count > 1 else ""
    where = f", first in {e.packet.capture}#{e.packet.number}" if e.packet is not None else ""
    return f"{e.attribute}={e.value}{count} ({e.source}{where})"


def _span(evidence: Iterable[Evidence]) -> tuple[int, int]:
    items = list(evidence)
    return min(e.first_ns for e in items), max(e.last_ns for e in items)


def _name(d: Device) -> str:
    return d.hostnames[0] if d.hostnames else d.id


@dataclass(frozen=True)
class _EvidenceRule:
    """A finding per device carrying evidence of ``attribute`` (with a value ``wanted`` accepts)."""

    name: str
    severity: Severity
    attribute: str
    title: str
    description: str
    remediation: str

    def wanted(self, value: str) -> bool:
        return True

    def evaluate(self, ctx: RiskContext) -> Iterable[Finding]:
        for d in ctx.devices:
            hits = [e for e in d.evidence if e.attribute == self.attribute and self.wanted(e.value)]
            if not hits:
                continue
            first, last = _span(hits)
            what = ", ".join(sorted({e.value for e in hits}))
            yield Finding(
                id=finding_id(self.name, d.id), rule=self.name, severity=self.severity,
                title=f"{self.title}: {_name(d)} ({what})", description=self.description, devices=(d.id,),
                evidence=tuple(_line(e) for e in hits), remediation=self.remediation, first_ns=first, last_ns=last,
            )  # fmt: skip


class _LegacyProtocol(_EvidenceRule):
    def wanted(self, value: str) -> bool:
        return value in LEGACY_PROTOCOLS


class _LegacyOs(_EvidenceRule):
    def wanted(self, value: str) -> bool:
        return any(name in value for name in LEGACY_WINDOWS)


class _CleartextManagement:
    """Telnet, FTP, r-services, TFTP, VNC answered by a device: credentials and commands readable on the wire."""

    name = "cleartext-management"
    severity = Severity.MEDIUM

    def evaluate(self, ctx: RiskContext) -> Iterable[Finding]:
        served: dict[DeviceId, list[Edge]] = defaultdict(list)
        for e in ctx.edges:
            if (e.proto, e.port) in CLEARTEXT_MANAGEMENT:
                served[e.dst_device].append(e)
        names = {d.id: d for d in ctx.devices}
        for dev, edges in sorted(served.items()):
            kinds = sorted({CLEARTEXT_MANAGEMENT[(e.proto, e.port or 0)] for e in edges})
            device = names.get(dev)
            yield Finding(
                id=finding_id(self.name, dev), rule=self.name, severity=self.severity,
                title=f"management in clear: {_name(device) if device else dev} serves {', '.join(kinds)}",
                description="Anyone on the path can read the passwords and commands of these sessions, and replay "
                "them; on a medical device they are usually the vendor's service access.",
                devices=(dev, *sorted({e.src_device for e in edges} - {dev})),
                evidence=tuple(f"{e.src_device} -> {dev} {e.service}: {e.flows} flows" for e in edges),
                remediation="Disable the service, or replace it by SSH/SFTP/HTTPS; where the vendor needs it, allow it "
                "only from the biomed jump host through the device's zone conduit.",
                first_ns=min(e.first_ns for e in edges), last_ns=max(e.last_ns for e in edges),
            )  # fmt: skip


def _public(d: Device | None, dev: DeviceId) -> str | None:
    """A globally routable address of the device (None: none seen)."""
    texts = [a.ip for a in d.addresses] if d is not None else []
    if not texts and dev.startswith("ip:"):
        texts = [dev[3:]]
    for text in texts:
        try:
            if ipaddress.ip_address(text).is_global:
                return text
        except ValueError:
            continue
    return None


class _InternetExposure:
    """A medical device exchanging traffic with internet addresses: talking out (cloud, vendor remote access) is
    high, being reached from the internet is critical."""

    name = "internet-exposure"
    severity = Severity.HIGH

    def evaluate(self, ctx: RiskContext) -> Iterable[Finding]:
        by_id = {d.id: d for d in ctx.devices}
        medical = {d.id for d in ctx.devices if ctx.catalog.is_medical(d.device_type)}
        out: dict[DeviceId, list[tuple[Edge, str, bool]]] = defaultdict(list)
        for e in ctx.edges:
            for dev, other, inbound in ((e.src_device, e.dst_device, False), (e.dst_device, e.src_device, True)):
                if dev in medical and (address := _public(by_id.get(other), other)) is not None:
                    out[dev].append((e, address, inbound))
        for dev, hits in sorted(out.items()):
            reached = any(inbound for _, _, inbound in hits)
            device = by_id[dev]
            yield Finding(
                id=finding_id(self.name, dev), rule=self.name,
                severity=Severity.CRITICAL if reached else Severity.HIGH,
                title=f"medical device {'reached from' if reached else 'talking to'} the internet: {_name(device)}",
                description="A medical device's traffic crosses the hospital's edge. Reached from outside, it can be "
                "attacked directly; talking out, it depends on (and exposes data to) services beyond the hospital.",
                devices=(dev,),
                evidence=tuple(
                    f"{'from' if inbound else 'to'} {address} {e.service}: {e.flows} flows, {e.packets} packets"
                    for e, address, inbound in hits
                ),
                remediation="Allow only the vendor services the device needs, through a proxy or a documented "
                "conduit; never expose a medical device's services to the internet (put remote access behind the "
                "hospital's VPN).",
                first_ns=min(e.first_ns for e, _, _ in hits), last_ns=max(e.last_ns for e, _, _ in hits),
            )  # fmt: skip


class _VlanBridging:
    """A device that is not a router but sends on several VLANs: it joins segments the network keeps apart."""

    name = "vlan-bridging"
    severity = Severity.MEDIUM

    def evaluate(self, ctx: RiskContext) -> Iterable[Finding]:
        for d in ctx.devices:
            if d.router or len(d.vlans) < 2:
                continue
            vlan_evidence = [e for e in d.evidence if e.attribute == "vlan"]
            first, last = _span(vlan_evidence) if vlan_evidence else (d.first_ns, d.last_ns)
            yield Finding(
                id=finding_id(self.name, d.id), rule=self.name, severity=self.severity,
                title=f"device on several VLANs: {_name(d)} ({', '.join(map(str, d.vlans))})",
                description="A host that is not a router sends on more than one VLAN: a dual-homed workstation, a "
                "trunk port left open or a misconfigured hypervisor, each a path around the segmentation.",
                devices=(d.id,), evidence=tuple(_line(e) for e in vlan_evidence),
                remediation="Give the host one access VLAN (or document it as a conduit); check the switch port is "
                "not a trunk.",
                first_ns=first, last_ns=last,
            )  # fmt: skip


class _NewSinceBaseline:
    """New devices and new communication paths the live monitor reported against its learned baseline: each
    is a change to review (medium when a medical device is involved)."""

    name = "new-since-baseline"
    severity = Severity.LOW

    def evaluate(self, ctx: RiskContext) -> Iterable[Finding]:
        by_id = {d.id: d for d in ctx.devices}
        medical = {d.id for d in ctx.devices if ctx.catalog.is_medical(d.device_type)}
        for e in ctx.events:
            if e.kind not in (EventKind.NEW_DEVICE, EventKind.NEW_PATH) or e.device is None:
                continue
            involved = tuple(x for x in (e.device, e.peer) if x)
            level = Severity.MEDIUM if medical & set(involved) else Severity.LOW
            if e.kind is EventKind.NEW_DEVICE:
                device = by_id.get(e.device)
                title = f"new device since the baseline: {_name(device) if device else e.device}"
                about: tuple[str, ...] = (e.device,)
            else:
                title = f"new path since the baseline: {e.device} -> {e.peer} {e.service}"
                about = (e.device, e.peer or "", e.service or "")
            yield Finding(
                id=finding_id(self.name, e.kind.value, *about), rule=self.name, severity=level, title=title,
                description="The live monitor saw this for the first time after its baseline was learned: a device "
                "or a communication path nobody has reviewed yet.",
                devices=involved, evidence=(f"event {e.id} from {e.sensor}: {e.summary}",),
                remediation="Confirm it is expected (then suppress this finding with the reason), or find and "
                "remove it; expected medical flows belong in the zone's conduits.",
                first_ns=e.ts_ns, last_ns=e.ts_ns,
            )  # fmt: skip


def default_rules() -> list[Rule]:
    """The base rules, in a fixed order."""
    return [
        _EvidenceRule(
            "cleartext-phi", Severity.HIGH, "phi_cleartext", "patient data in clear",
            "Patient data (HL7 PID segments, DICOM patient-group elements) crossed the network unencrypted: "
            "anyone on the path can read or alter it.",
            "Carry HL7 over TLS (or a VPN between the device and the interface engine) and enable DICOM TLS "
            "(PS3.15 B.1); until then keep the flow inside its zone.",
        ),
        _EvidenceRule(
            "cleartext-credentials", Severity.HIGH, "cleartext_secret", "credentials in clear",
            "A password or SNMP community string was sent unencrypted: anyone on the path can reuse it.",
            "Use SNMPv3 with authPriv, HTTPS instead of HTTP Basic; change the exposed secret.",
        ),
        _LegacyProtocol(
            "legacy-protocol", Severity.MEDIUM, "protocol", "legacy protocol version",
            "SMB1, SSL 3.0, TLS 1.0/1.1 or SNMPv1 is in use: versions with known, exploited weaknesses "
            "(SMB1: EternalBlue/WannaCry, which hit hospitals first).",
            "Disable SMB1 and old TLS versions on the device or its peers; where the vendor cannot, contain the "
            "device in a zone that allows only its clinical flows.",
        ),
        _LegacyOs(
            "legacy-os", Severity.HIGH, "os", "unsupported operating system",
            "The device runs a Windows release without security updates (as its NTLMSSP or SMB banner says): "
            "every later vulnerability stays open.",
            "Ask the manufacturer for a supported platform or a documented compensating control; contain the "
            "device (allow-list its clinical flows only) until it is replaced.",
        ),
        _CleartextManagement(),
        _InternetExposure(),
        _VlanBridging(),
        _NewSinceBaseline(),
    ]  # fmt: skip
