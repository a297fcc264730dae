"""The dissector registry and dispatch table.

Built-in dissectors register exactly as third-party ones do: through ``Registry.register``. Third-party
packages add theirs with an entry point in the ``wardwatch.dissectors`` group naming a zero-argument
factory. A second dissector under a name already taken is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import entry_points

from wardwatch.dissect.arp import ArpDissector
from wardwatch.dissect.dhcp import DhcpDissector, Dhcpv6Dissector
from wardwatch.dissect.dns import DnsDissector
from wardwatch.dissect.interface import Dissector, Selector
from wardwatch.dissect.nbns import NbnsDissector
from wardwatch.dissect.ndp import NdpDissector
from wardwatch.errors import DissectorRegistrationError
from wardwatch.model.packet import IpProto, Packet

ENTRY_POINT_GROUP = "wardwatch.dissectors"

BUILTIN: tuple[type[Dissector], ...] = (
    ArpDissector,
    DhcpDissector,
    Dhcpv6Dissector,
    DnsDissector,
    NbnsDissector,
    NdpDissector,
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
        self._heads: list[Dissector] = []
        self._tests = False

    def register(self, dissector: Dissector) -> None:
        """Add ``dissector``; raises ``DissectorRegistrationError`` if its name is taken or it selects nothing."""
        name = getattr(dissector, "name", None)
        if not isinstance(name, str) or not name:
            raise DissectorRegistrationError(f"dissector {dissector!r} has no name")
        if name in self._by_name:
            raise DissectorRegistrationError(f"a dissector named {name!r} is already registered")
        sel = dissector.selector
        if not (sel.udp_ports or sel.tcp_ports or sel.ethertypes or sel.ip_protos or sel.arp or sel.stream_head):
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
        for proto in sel.ip_protos:
            self._ip_proto.setdefault(proto, []).append(dissector)
        if sel.arp:
            self._arp.append(dissector)
        if sel.stream_head:
            self._heads.append(dissector)
        self._tests = self._tests or sel.payload is not None

    @property
    def names(self) -> tuple[str, ...]:
        """Registered names, sorted."""
        return tuple(sorted(self._by_name))

    def get(self, name: str) -> Dissector:
        """The dissector registered as ``name`` (KeyError if none)."""
        return self._by_name[name]

    @property
    def head_limit(self) -> int:
        """The longest stream head any dissector asks for (0: none does, and the engine numbers no streams)."""
        return max((d.selector.stream_head for d in self._heads), default=0)

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
        if stream_index >= 0:
            found += [d for d in self._heads if stream_index < d.selector.stream_head]
        if len(found) > 1:
            found = list(dict.fromkeys(found))
        if found and self._tests:
            found = [d for d in found if d.selector.payload is None or d.selector.payload.passes(packet.payload)]
        return found


def default_registry(extra: Iterable[Dissector] = (), plugins: bool = True) -> Registry:
    """A registry with the built-in dissectors, installed plugins (entry points) and ``extra``."""
    registry = Registry()
    for cls in BUILTIN:
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
