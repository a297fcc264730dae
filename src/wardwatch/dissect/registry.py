"""The dissector registry and dispatch table.

Built-in dissectors register exactly as third-party ones do: through ``Registry.register``. Third-party
packages add theirs with an entry point in the ``wardwatch.dissectors`` group naming a zero-argument
factory. A second dissector under a name already taken is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import cast

from wardwatch.dissect.arp import ArpDissector
from wardwatch.dissect.cdp import CdpDissector
from wardwatch.dissect.dhcp import DhcpDissector, Dhcpv6Dissector
from wardwatch.dissect.dicom import DicomDissector
from wardwatch.dissect.dns import DnsDissector
from wardwatch.dissect.hl7 import Hl7Dissector
from wardwatch.dissect.http import HttpDissector, SsdpDissector
from wardwatch.dissect.interface import Dissector, Selector, StreamDissector, StreamSelector
from wardwatch.dissect.lldp import LldpDissector
from wardwatch.dissect.nbns import NbnsDissector
from wardwatch.dissect.ndp import NdpDissector
from wardwatch.dissect.smb import SmbDissector
from wardwatch.dissect.snmp import SnmpDissector
from wardwatch.dissect.tls import TlsDissector
from wardwatch.errors import DissectorRegistrationError
from wardwatch.model.packet import IpProto, Packet

ENTRY_POINT_GROUP = "wardwatch.dissectors"

BUILTIN: tuple[type[Dissector] | type[StreamDissector], ...] = (
    ArpDissector,
    CdpDissector,
    DhcpDissector,
    Dhcpv6Dissector,
    DicomDissector,
    DnsDissector,
    Hl7Dissector,
    HttpDissector,
    LldpDissector,
    NbnsDissector,
    NdpDissector,
    SmbDissector,
    SnmpDissector,
    SsdpDissector,
    TlsDissector,
)


class Registry:
    """Named dissectors and the lookup tables that find the ones a packet should go to."""

    def __init__(self) -> None:
        self._by_name: dict[str, Dissector] = {}
        self._udp: dict[int, list[Dissector]] = {}
        self._tcp: dict[int, list[Dissector]] = {}
        self._ethertype: dict[int, list[Dissector]] = {}
        self._ip_proto: dict[int, list[Dissector]] = {}
        self._arp: list[Dissector] = []
        self._snap: dict[tuple[int, int], list[Dissector]] = {}
        self._heads: list[Dissector] = []
        self._streams: dict[str, StreamDissector] = {}
        self._tests = False

    def register(self, dissector: Dissector | StreamDissector) -> None:
        """Add ``dissector`` (a packet or a stream dissector); raises ``DissectorRegistrationError`` if its name is
        taken or it selects nothing."""
        name = getattr(dissector, "name", None)
        if not isinstance(name, str) or not name:
            raise DissectorRegistrationError(f"dissector {dissector!r} has no name")
        if name in self._by_name or name in self._streams:
            raise DissectorRegistrationError(f"a dissector named {name!r} is already registered")
        stream = getattr(dissector, "stream", None)
        if stream is not None:
            if not isinstance(stream, StreamSelector) or not callable(getattr(dissector, "dissect_stream", None)):
                raise DissectorRegistrationError(f"stream dissector {name!r} needs a StreamSelector and dissect_stream")
            self._streams[name] = cast(StreamDissector, dissector)
            return
        dissector = cast(Dissector, dissector)
        sel = getattr(dissector, "selector", None)
        if not isinstance(sel, Selector):
            raise DissectorRegistrationError(f"dissector {name!r} has neither a Selector nor a StreamSelector")
        if not (
            sel.udp_ports
            or sel.tcp_ports
            or sel.ethertypes
            or sel.ip_protos
            or sel.arp
            or sel.llc_snap
            or sel.stream_head
        ):
            raise DissectorRegistrationError(f"dissector {name!r} selects no packets")
        if sel.stream_head < 0:
            raise DissectorRegistrationError(f"dissector {name!r} asks for a negative stream head")
        self._by_name[name] = dissector
        for port in sel.udp_ports:
            self._udp.setdefault(port, []).append(dissector)
        for port in sel.tcp_ports:
            self._tcp.setdefault(port, []).append(dissector)
        for etype in sel.ethertypes:
            self._ethertype.setdefault(etype, []).append(dissector)
        for snap in sel.llc_snap:
            self._snap.setdefault(snap, []).append(dissector)
        for proto in sel.ip_protos:
            self._ip_proto.setdefault(proto, []).append(dissector)
        if sel.arp:
            self._arp.append(dissector)
        if sel.stream_head:
            self._heads.append(dissector)
        self._tests = self._tests or sel.payload is not None

    @property
    def names(self) -> tuple[str, ...]:
        """Registered names (packet and stream dissectors), sorted."""
        return tuple(sorted((*self._by_name, *self._streams)))

    def get(self, name: str) -> Dissector | StreamDissector:
        """The dissector registered as ``name`` (KeyError if none)."""
        return self._by_name[name] if name in self._by_name else self._streams[name]

    @property
    def streams(self) -> tuple[StreamDissector, ...]:
        """The stream dissectors, by name."""
        return tuple(self._streams[n] for n in sorted(self._streams))

    @property
    def stream_limit(self) -> int:
        """Payload packets per direction a claimed connection is reassembled from (the most any stream dissector
        asks for; 0 without stream dissectors)."""
        return max((d.stream.packets for d in self._streams.values()), default=0)

    @property
    def head_limit(self) -> int:
        """The longest stream head any dissector asks for, stream dissectors included (0: none does, and the
        engine numbers no streams)."""
        return max(self.stream_limit, max((d.selector.stream_head for d in self._heads), default=0))

    @property
    def plain_head(self) -> int:
        """The longest stream head a dissector without a payload test asks for."""
        return max((d.selector.stream_head for d in self._heads if d.selector.payload is None), default=0)

    def wanted(self) -> tuple[frozenset[int], frozenset[int], frozenset[int], frozenset[int]]:
        """(UDP ports, TCP ports, IP protocols, ethertypes) that dissectors without a payload test select; ARP is
        wanted when ``arp_wanted``, stream heads up to ``plain_head``. The selectors with a payload test are in
        ``tested``."""
        plain = [d.selector for d in self._by_name.values() if d.selector.payload is None]
        return (
            frozenset(p for s in plain for p in s.udp_ports),
            frozenset(p for s in plain for p in s.tcp_ports),
            frozenset(p for s in plain for p in s.ip_protos),
            frozenset(e for s in plain for e in s.ethertypes),
        )

    @property
    def snap_wanted(self) -> frozenset[tuple[int, int]]:
        """SNAP (OUI, protocol id) pairs that dissectors without a payload test select."""
        return frozenset(p for d in self._by_name.values() if d.selector.payload is None for p in d.selector.llc_snap)

    @property
    def arp_wanted(self) -> bool:
        """Some dissector without a payload test wants ARP messages."""
        return any(d.selector.payload is None for d in self._arp)

    def tested(self) -> list[Selector]:
        """The selectors that come with a payload test (distinct, in registration order)."""
        return list(dict.fromkeys(d.selector for d in self._by_name.values() if d.selector.payload is not None))

    def for_packet(self, packet: Packet, stream_index: int = -1) -> list[Dissector]:
        """The dissectors that want ``packet``, each at most once; ``stream_index`` is its stream-head number
        (``inventory.streams.StreamHeads``), -1 when it has none."""
        found: list[Dissector] = []
        proto = packet.proto
        if proto == IpProto.UDP and packet.src_port is not None:
            found += self._udp.get(packet.src_port, ())
            if packet.dst_port != packet.src_port:
                found += self._udp.get(packet.dst_port or 0, ())
        elif proto == IpProto.TCP and packet.src_port is not None:
            found += self._tcp.get(packet.src_port, ())
            if packet.dst_port != packet.src_port:
                found += self._tcp.get(packet.dst_port or 0, ())
        if proto is not None and proto in self._ip_proto:
            found += self._ip_proto[proto]
        if packet.arp is not None:
            found += self._arp
        if packet.ethertype is not None and packet.ethertype in self._ethertype:
            found += self._ethertype[packet.ethertype]
        elif packet.llc_snap is not None and packet.llc_snap in self._snap:
            found += self._snap[packet.llc_snap]
        if stream_index >= 0:
            found += [d for d in self._heads if stream_index < d.selector.stream_head]
        if len(found) > 1:
            found = list(dict.fromkeys(found))
        if found and self._tests:
            found = [d for d in found if d.selector.payload is None or d.selector.payload.passes(packet.payload)]
        return found


def default_registry(
    extra: Iterable[Dissector | StreamDissector] = (), plugins: bool = True, streams: bool = True
) -> Registry:
    """A registry with the built-in dissectors (without the stream dissectors when ``streams`` is False),
    installed plugins (entry points) and ``extra``."""
    registry = Registry()
    for cls in BUILTIN:
        if streams or not hasattr(cls, "stream"):
            registry.register(cls())
    if plugins:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                factory = ep.load()
                registry.register(factory())
            except DissectorRegistrationError:
                raise
            except Exception as exc:
                raise DissectorRegistrationError(f"dissector plugin {ep.name!r} failed to load: {exc}") from exc
    for dissector in extra:
        registry.register(dissector)
    return registry
