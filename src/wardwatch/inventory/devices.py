"""Identity resolution: from frames and observations to devices.

A *device* is a unicast MAC seen on the monitored segment (as a frame source, or named by DHCP/ARP/NDP),
or an IP address that no local MAC owns (behind a router, or captured without a link layer).

Which MAC owns an IP is decided from evidence, strongest first:

==================  ==========  ===========================================================================
source              confidence  meaning
==================  ==========  ===========================================================================
``arp``             0.95        the ARP sender states its own binding
``dhcp-ack``        0.95        a DHCP server granted the address to that client hardware address
``ndp``             0.9-0.95    IPv6 Neighbor Discovery link-layer address options
``link-local``      0.9         a link-local source address cannot have crossed a router
``ip-source``       0.8         the MAC sent packets from the IP with an initial TTL (32/64/128/255):
                                the sender is on this segment
``only-source``     0.5         the only IP a MAC sent from, with a decremented TTL, private address
``ip-destination``  0.4         packets to the IP went to the MAC (which is not a router)
==================  ==========  ===========================================================================

A MAC that sends packets of internet addresses, or of several addresses, with decremented TTLs is a router:
those addresses are *behind* it and become IP devices with ``via`` naming the router. All strong bindings
(>= 0.8) are kept, so an address reassigned from one device to another shows on both with its time range.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from wardwatch.capture.vector import Columns
from wardwatch.inventory import native
from wardwatch.inventory.catalog import Catalog
from wardwatch.inventory.grouping import I64, Aggregates, group, group_ids, sightings
from wardwatch.inventory.oui import local_convention, vendor_of
from wardwatch.model.addr import (
    ip_bytes,
    ip_sort_key,
    ip_str,
    is_global_ip,
    is_link_local_ip,
    is_local_mac,
    is_unicast_ip,
    mac_bytes,
    mac_str,
)
from wardwatch.model.inventory import SINGLE_VALUED, AddressUse, Device, DeviceId, DeviceKind, Evidence, choose
from wardwatch.model.observation import Attribute, CaptureId, Observation, PacketRef, SubjectKind
from wardwatch.model.packet import Packet

#: The per-address accumulators, in the order of the C accumulator's tables.
ACCUMULATORS = ("macs", "mac_vlans", "ips", "pairs", "dst_pairs")
#: Dictionary key of an accumulator's key columns.
_ACCUMULATOR_KEYS: dict[str, Callable[[list[int]], Any]] = {
    "macs": lambda k: _mac(k[0]),
    "mac_vlans": lambda k: (_mac(k[0]), int(k[1])),
    "ips": lambda k: _ip(k[0], k[1], k[2]),
    "dst_pairs": lambda k: (_mac(k[0]), _ip(k[1], k[2], k[3]), _vlan(k[4])),
}
#: Initial TTL / hop limit values of common stacks: a packet still carrying one has not been routed.
HOP0_TTLS = frozenset({32, 64, 128, 255})
HOP0_ARRAY = np.array(sorted(HOP0_TTLS), dtype=np.int32)
#: Encapsulations whose inner addresses are not the link-layer sender's own.
IP_TUNNELS = frozenset({"ipv4", "ipv6", "gre"})
STRONG = 0.8
OUI_CONFIDENCE = 0.6


def _mac(value: int) -> bytes:
    return value.to_bytes(6, "big")


def _ip(ver: int, hi: int, lo: int) -> bytes:
    return lo.to_bytes(4, "big") if ver == 4 else ((hi << 64) | lo).to_bytes(16, "big")


def _vlan(value: int) -> int | None:
    return None if value in (-1, MISSING_VLAN) else value


#: ``vlan`` -1 seen through a uint64 key column.
MISSING_VLAN = 2**64 - 1


def _unicast(
    ver: npt.NDArray[np.uint64], hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]
) -> npt.NDArray[np.bool_]:
    """``is_unicast_ip`` over columns: not unspecified, multicast, broadcast, 0/8 or 240/4 (IPv4)."""
    first = lo >> np.uint64(24)
    v4 = (first != 0) & ((lo >> np.uint64(28)) != 0xE) & (first < 240)
    v6 = ~((hi == 0) & (lo == 0)) & ((hi >> np.uint64(56)) != 0xFF)
    return cast(npt.NDArray[np.bool_], np.where(ver == 4, v4, v6))


class Span:
    """First/last time and first packet of something seen repeatedly (mutable accumulator)."""

    __slots__ = ("capture", "count", "first_ns", "last_ns", "number")

    def __init__(self, ts: int, capture: CaptureId, number: int) -> None:
        self.first_ns = ts
        self.last_ns = ts
        self.capture = capture
        self.number = number
        self.count = 0

    def see(self, ts: int, capture: CaptureId, number: int) -> None:
        """Extend the span with one more sighting."""
        self.count += 1
        if ts < self.first_ns:
            self.first_ns = ts
            self.capture = capture
            self.number = number
        elif ts > self.last_ns:
            self.last_ns = ts

    def merge(self, other: Span) -> None:
        """Extend the span by another one (seen later in processing order)."""
        self.absorb(other.count, other.first_ns, other.capture, other.number, other.last_ns)

    def absorb(self, count: int, first_ns: int, capture: CaptureId, number: int, last_ns: int) -> None:
        """Extend the span by sightings aggregated elsewhere (seen later in processing order)."""
        self.count += count
        if first_ns < self.first_ns:
            self.first_ns = first_ns
            self.capture = capture
            self.number = number
        if last_ns > self.last_ns:
            self.last_ns = last_ns

    @classmethod
    def of(cls, count: int, first_ns: int, capture: CaptureId, number: int, last_ns: int) -> Span:
        """A span from aggregated sightings."""
        span = cls(first_ns, capture, number)
        span.count = count
        span.last_ns = last_ns
        return span


class _SourcePair:
    """A (MAC, IP, VLAN) seen as the sender of IP packets, with how the TTLs looked."""

    __slots__ = ("hop0", "routed", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.hop0 = 0
        self.routed = 0


def best_value(evidence: Sequence[Evidence], attribute: str) -> str | None:
    """The value a single-valued ``attribute`` takes given this evidence (``model.inventory.choose``)."""
    return choose([(e.confidence, e.value, e.source) for e in evidence if e.attribute == attribute], attribute)


class _Fact:
    """An observation aggregated over all the packets that repeat it."""

    __slots__ = ("confidence", "span", "vlan")

    def __init__(self, confidence: float, span: Span, vlan: int | None) -> None:
        self.confidence = confidence
        self.span = span
        self.vlan = vlan


FactKey = tuple[SubjectKind, str, Attribute, str, str]


@dataclass(slots=True)
class _Binding:
    mac: bytes
    ip: bytes
    vlan: int | None
    source: str
    confidence: float
    span: Span


@dataclass(slots=True)
class _DeviceDraft:
    id: DeviceId
    kind: DeviceKind
    mac: bytes | None
    span: Span
    addresses: dict[tuple[str, int | None], tuple[Span, str, float]] = field(default_factory=dict)
    vlans: dict[int, Span] = field(default_factory=dict)
    evidence: dict[tuple[str, str, str], tuple[float, Span]] = field(default_factory=dict)
    hostnames: dict[str, float] = field(default_factory=dict)
    router: bool = False
    via: str | None = None

    def add_evidence(self, attribute: str, value: str, source: str, confidence: float, span: Span) -> None:
        key = (attribute, value, source)
        old = self.evidence.get(key)
        if old is None:
            merged = Span(span.first_ns, span.capture, span.number)
            merged.last_ns = span.last_ns
            merged.count = span.count
            self.evidence[key] = (confidence, merged)
        else:
            old[1].merge(span)
            if confidence > old[0]:
                self.evidence[key] = (confidence, old[1])


#: Sources and confidences of the bindings a source pair can make (see ``_bindings``).
PAIR_SOURCES = ("link-local", "ip-source", "only-source")
PAIR_CONFIDENCE = np.array([0.9, 0.8, 0.5])


def _ip_words(ip: bytes) -> tuple[int, int, int]:
    """(version, high 64 bits, low 64 bits) of an address, as the accumulators key it."""
    if len(ip) == 4:
        return 4, 0, int.from_bytes(ip, "big")
    value = int.from_bytes(ip, "big")
    return 6, value >> 64, value & 0xFFFFFFFFFFFFFFFF


@dataclass(frozen=True, slots=True)
class _PairTable:
    """(MAC, IP, VLAN) sightings as columns, for resolution: the source pairs (``hop0``: how many of their
    packets carried an initial TTL) or the destination pairs (``hop0`` 0)."""

    mac: npt.NDArray[np.uint64]
    ver: npt.NDArray[np.uint64]
    hi: npt.NDArray[np.uint64]
    lo: npt.NDArray[np.uint64]
    vlan: I64
    """-1 when untagged."""
    count: I64
    first: I64
    cap: I64
    """Index into ``captures`` of the capture of the first packet."""
    number: I64
    last: I64
    hop0: I64
    captures: Sequence[CaptureId]

    @classmethod
    def of_export(cls, n: int, raw_keys: bytes, raw_values: bytes, captures: Sequence[CaptureId]) -> _PairTable:
        """A table of ``Sightings.export`` (keys: MAC, version, high, low, VLAN; values as ``Span`` plus extra)."""
        keys = np.frombuffer(raw_keys, dtype=np.uint64).reshape(n, 5)
        values = np.frombuffer(raw_values, dtype=np.int64).reshape(n, 6)
        vlan = keys[:, 4].astype(np.int64)  # MISSING_VLAN (all ones) -> -1
        return cls(keys[:, 0], keys[:, 1], keys[:, 2], keys[:, 3], vlan, values[:, 0], values[:, 1], values[:, 2],
                   values[:, 3], values[:, 4], values[:, 5], captures)  # fmt: skip

    @classmethod
    def of_dict(cls, pairs: Mapping[tuple[bytes, bytes, int | None], tuple[Span, int]]) -> _PairTable:
        """A table of the builder's dictionaries: (MAC, IP, VLAN) -> (span, packets with an initial TTL)."""
        captures: dict[CaptureId, int] = {}
        rows = []
        for (mac, ip, vlan), (span, hop0) in pairs.items():
            rows.append((int.from_bytes(mac, "big"), *_ip_words(ip), -1 if vlan is None else vlan, span.count,
                         span.first_ns, captures.setdefault(span.capture, len(captures)), span.number, span.last_ns,
                         hop0))  # fmt: skip
        cols = list(zip(*rows, strict=True)) if rows else [()] * 11
        u64 = [np.array(c, dtype=np.uint64) for c in cols[:4]]
        i64 = [np.array(c, dtype=np.int64) for c in cols[4:]]
        v, c, f, k, n, last, h = i64
        return cls(u64[0], u64[1], u64[2], u64[3], v, c, f, k, n, last, h, list(captures))

    def ip(self, row: int) -> bytes:
        return _ip(int(self.ver[row]), int(self.hi[row]), int(self.lo[row]))

    def vlan_of(self, row: int) -> int | None:
        vlan = int(self.vlan[row])
        return None if vlan < 0 else vlan

    def span(self, row: int) -> Span:
        return Span.of(int(self.count[row]), int(self.first[row]), self.captures[int(self.cap[row])],
                       int(self.number[row]), int(self.last[row]))  # fmt: skip

    def ip_flag(self, test: Callable[[bytes], bool]) -> npt.NDArray[np.bool_]:
        """``test`` of each row's IP (called once per distinct address)."""
        if len(self.mac) == 0:
            return np.zeros(0, dtype=bool)
        ids, n = group_ids([self.ver, self.hi, self.lo])
        first = np.zeros(n, dtype=np.int64)
        first[ids[::-1]] = np.arange(len(ids) - 1, -1, -1, dtype=np.int64)  # a row of each address
        words = zip(self.ver[first].tolist(), self.hi[first].tolist(), self.lo[first].tolist(), strict=True)
        flags = np.array([test(_ip(v, h, lo)) for v, h, lo in words], dtype=bool)
        return cast(npt.NDArray[np.bool_], flags[ids])

    def first_routed(self, mac: bytes) -> Span:
        """The earliest span (time, capture id, packet number) of ``mac``'s pairs with packets of routed TTLs."""
        rows = np.flatnonzero((self.mac == np.uint64(int.from_bytes(mac, "big"))) & (self.count > self.hop0))
        rank = np.argsort(np.argsort(np.array(self.captures, dtype=object)))  # capture ids compare as strings
        best = min(rows.tolist(), key=lambda r: (int(self.first[r]), int(rank[int(self.cap[r])]), int(self.number[r])))
        return self.span(best)


def _routers(pairs: _PairTable) -> set[bytes]:
    """MACs that forward other hosts' packets: several, or internet, source IPs with routed TTLs only."""
    routed = np.flatnonzero((pairs.count > pairs.hop0) & (pairs.hop0 == 0) & ~pairs.ip_flag(is_link_local_ip))
    if len(routed) == 0:
        return set()
    mac = pairs.mac[routed]
    ids, n = group_ids([mac, pairs.ver[routed], pairs.hi[routed], pairs.lo[routed]])
    first = np.zeros(n, dtype=np.int64)
    first[ids] = np.arange(len(ids), dtype=np.int64)  # one IP over several VLANs counts once
    macs, addresses = np.unique(mac[first], return_counts=True)
    found = set(macs[addresses >= 2].tolist()) | set(mac[pairs.ip_flag(is_global_ip)[routed]].tolist())
    return {_mac(int(m)) for m in found}


@dataclass(frozen=True, slots=True)
class Resolution:
    """Devices resolved from everything seen, and the lookup from an IP (at a time) to its device."""

    devices: tuple[Device, ...]
    owners: dict[bytes, tuple[tuple[DeviceId, int, int], ...]]
    """IP -> (device, first_ns, last_ns) of every device that used it."""
    single: dict[bytes, DeviceId] = field(default_factory=dict, compare=False, repr=False)
    """IP -> its device, for the (usual) addresses only one device used: the lookup on the hot path."""
    shared: set[bytes] = field(default_factory=set, compare=False, repr=False)
    """The addresses several devices used (which one is meant depends on the time)."""

    def __post_init__(self) -> None:
        self.single.update({ip: o[0][0] for ip, o in self.owners.items() if len(o) == 1})
        self.shared.update(ip for ip, o in self.owners.items() if len(o) > 1)

    def device_of(self, ip: bytes, ts: int | None = None) -> DeviceId | None:
        """The device that used ``ip`` at ``ts`` (or the one that used it longest / nearest in time)."""
        dev = self.single.get(ip)
        if dev is not None:
            return dev
        owners = self.owners.get(ip)
        if not owners:
            return None
        if len(owners) == 1 or ts is None:
            return owners[0][0]
        for dev, first, last in owners:
            if first <= ts <= last:
                return dev
        return min(owners, key=lambda o: min(abs(ts - o[1]), abs(ts - o[2])))[0]


class InventoryBuilder:
    """Accumulates per-packet address facts and dissector observations; ``resolve`` turns them into devices."""

    def __init__(self) -> None:
        self._pending = {name: Aggregates() for name in ACCUMULATORS}
        self._pending_capture: CaptureId | None = None
        self._acc: Any = None
        """The C accumulator (``_accum.Sightings``) when built; its capture numbers index ``_acc_captures``."""
        self._acc_captures: list[CaptureId] = []
        self._acc_index: dict[CaptureId, int] = {}
        self._macs: dict[bytes, Span] = {}
        self._mac_vlans: dict[tuple[bytes, int], Span] = {}
        self._pairs: dict[tuple[bytes, bytes, int | None], _SourcePair] = {}
        self._dst_pairs: dict[tuple[bytes, bytes, int | None], Span] = {}
        self._ips: dict[bytes, Span] = {}
        self._facts: dict[FactKey, _Fact] = {}

    # --- pickling (worker processes send their builder back): plain tuples, not one object per span -----

    def __getstate__(self) -> dict[str, Any]:
        if self._only_in_c():  # the C tables as bytes: no object per key on either side
            return {
                "raw": (list(self._acc_captures), [self._acc.export(t) for t in range(len(ACCUMULATORS))]),
                "facts": self._fact_rows(),
            }
        self.flush()

        def spans(d: dict[Any, Span]) -> list[tuple[Any, ...]]:
            return [(k, s.first_ns, s.last_ns, s.capture, s.number, s.count) for k, s in d.items()]

        return {
            "macs": spans(self._macs),
            "mac_vlans": spans(self._mac_vlans),
            "dst_pairs": spans(self._dst_pairs),
            "ips": spans(self._ips),
            "pairs": [
                (k, p.span.first_ns, p.span.last_ns, p.span.capture, p.span.number, p.span.count, p.hop0, p.routed)
                for k, p in self._pairs.items()
            ],
            "facts": self._fact_rows(),
        }

    def _fact_rows(self) -> list[tuple[Any, ...]]:
        return [
            (k, f.span.first_ns, f.span.last_ns, f.span.capture, f.span.number, f.span.count, f.confidence, f.vlan)
            for k, f in self._facts.items()
        ]  # fmt: skip

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

        def span(first: int, last: int, capture: CaptureId, number: int, count: int) -> Span:
            s = Span(first, capture, number)
            s.last_ns, s.count = last, count
            return s

        if "raw" in state:
            captures, exports = state["raw"]
            self._absorb_c(captures, exports)
        for name in ("macs", "mac_vlans", "dst_pairs", "ips"):
            target: dict[Any, Span] = getattr(self, "_" + name)
            for k, first, last, capture, number, count in state.get(name, ()):
                target[k] = span(first, last, capture, number, count)
        for k, first, last, capture, number, count, hop0, routed in state.get("pairs", ()):
            pair = self._pairs[k] = _SourcePair(span(first, last, capture, number, count))
            pair.hop0, pair.routed = hop0, routed
        for k, first, last, capture, number, count, confidence, vlan in state["facts"]:
            self._facts[k] = _Fact(confidence, span(first, last, capture, number, count), vlan)

    # --- accumulation (per packet; keep cheap) ------------------------------------------------------------

    def add_packet(self, pkt: Packet, capture: CaptureId) -> None:
        """Account the addresses of one decoded packet."""
        if self._pending_capture is not None or self._acc is not None:
            self.flush()
            self._pending_capture = None
        ts = pkt.ts_ns
        number = pkt.number
        vlan = pkt.vlans[-1] if pkt.vlans else None
        smac = pkt.src_mac
        valid_smac = smac is not None and not smac[0] & 1 and smac != b"\x00\x00\x00\x00\x00\x00"
        if valid_smac:
            assert smac is not None
            span = self._macs.get(smac)
            if span is None:
                span = self._macs[smac] = Span(ts, capture, number)
            span.see(ts, capture, number)
            if vlan is not None:
                key = (smac, vlan)
                vspan = self._mac_vlans.get(key)
                if vspan is None:
                    vspan = self._mac_vlans[key] = Span(ts, capture, number)
                vspan.see(ts, capture, number)
        src_ip = pkt.src_ip
        if src_ip is None or pkt.dst_ip is None:
            return
        tunnelled = bool(pkt.tunnels) and not IP_TUNNELS.isdisjoint(pkt.tunnels)
        if is_unicast_ip(src_ip):
            self._see_ip(src_ip, ts, capture, number)
            if valid_smac and not tunnelled:
                assert smac is not None
                pkey = (smac, src_ip, vlan)
                pair = self._pairs.get(pkey)
                if pair is None:
                    pair = self._pairs[pkey] = _SourcePair(Span(ts, capture, number))
                pair.span.see(ts, capture, number)
                if pkt.ttl in HOP0_TTLS:
                    pair.hop0 += 1
                else:
                    pair.routed += 1
        dst_ip = pkt.dst_ip
        dmac = pkt.dst_mac
        if dmac is not None and dmac[0] & 1:
            return  # broadcast / multicast frame: the destination IP is not one host
        if is_unicast_ip(dst_ip):
            self._see_ip(dst_ip, ts, capture, number)
            if dmac is not None and not tunnelled:
                dkey = (dmac, dst_ip, vlan)
                dspan = self._dst_pairs.get(dkey)
                if dspan is None:
                    dspan = self._dst_pairs[dkey] = Span(ts, capture, number)
                dspan.see(ts, capture, number)

    def _see_ip(self, ip: bytes, ts: int, capture: CaptureId, number: int) -> None:
        span = self._ips.get(ip)
        if span is None:
            span = self._ips[ip] = Span(ts, capture, number)
        span.see(ts, capture, number)

    def add_columns(self, cols: Columns, capture: CaptureId, rows: I64 | None = None) -> None:
        """Account the addresses of a decoded batch (``rows``: the records to use, default all): the same as
        ``add_packet`` for each of them, in order, with array operations.

        Each batch is aggregated per key at once; the aggregates wait in ``_pending`` and are merged into the
        dictionaries by ``flush`` (at the end of a capture, before ``resolve``, or when many have gathered), so
        per-key Python work happens once per capture rather than once per batch.
        """
        b = cols.batch
        if native.c_accum is not None:
            if self._pending_capture is not None:
                self.flush()
                self._pending_capture = None
            if self._acc is None:
                self._acc = native.c_accum.Sightings()
            index = self._capture_number(capture)
            c = np.ascontiguousarray
            self._acc.add(
                index, np.arange(len(b), dtype=np.int64) if rows is None else c(rows, dtype=np.int64), c(cols.smac),
                c(cols.dmac), c(cols.has_smac), c(cols.has_dmac), c(cols.vlan), c(cols.ipver), c(cols.src_hi),
                c(cols.src_lo), c(cols.dst_hi), c(cols.dst_lo), c(cols.ip_tunnel), c(cols.ttl), c(b.ts), c(b.number),
            )  # fmt: skip
            return
        if self._acc is not None:
            self.flush()
        if capture != self._pending_capture:
            self.flush()
            self._pending_capture = capture
        sel = np.arange(len(b)) if rows is None else rows
        if len(sel) == 0:
            return
        smac, dmac = cols.smac[sel], cols.dmac[sel]
        valid_smac = cols.has_smac[sel] & (((smac >> np.uint64(40)) & np.uint64(1)) == 0) & (smac != 0)
        ver = cols.ipver[sel].astype(np.uint64)
        has_ip = ver > 0
        src_hi, src_lo, dst_hi, dst_lo = cols.src_hi[sel], cols.src_lo[sel], cols.dst_hi[sel], cols.dst_lo[sel]
        src_uni = has_ip & _unicast(ver, src_hi, src_lo)
        group_dst = cols.has_dmac[sel] & (((dmac >> np.uint64(40)) & np.uint64(1)) == 1)
        dst_uni = has_ip & ~group_dst & _unicast(ver, dst_hi, dst_lo)
        untunnelled = ~cols.ip_tunnel[sel]
        hop0 = np.isin(cols.ttl[sel], HOP0_ARRAY)
        # one grouping of the batch on everything the accumulators look at; each accumulator then reduces the
        # (far fewer) groups instead of the packets
        bits = (
            valid_smac.astype(np.uint64)
            | (src_uni.astype(np.uint64) << np.uint64(1))
            | (dst_uni.astype(np.uint64) << np.uint64(2))
            | (cols.has_dmac[sel].astype(np.uint64) << np.uint64(3))
            | (untunnelled.astype(np.uint64) << np.uint64(4))
            | (hop0.astype(np.uint64) << np.uint64(5))
        )
        vlan16 = (cols.vlan[sel].astype(np.int64) & 0xFFFF).astype(np.uint64)  # -1 -> 0xFFFF
        meta = vlan16 | (bits << np.uint64(16)) | (ver << np.uint64(32))
        relevant = np.flatnonzero(valid_smac | has_ip)
        if len(relevant) == 0:
            return
        keys = [smac[relevant], dmac[relevant], meta[relevant], src_lo[relevant], dst_lo[relevant]]
        v6 = ver[relevant] == 6
        if v6.any():
            keys += [src_hi[relevant], dst_hi[relevant]]
        order, starts = group(keys)
        rix = relevant[order]
        sig = sightings(np.arange(len(rix)), starts, b.ts[sel][rix], b.number[sel][rix])
        g = rix[starts]  # one representative packet per group
        g_bits = bits[g]
        g_vlan = np.where(vlan16[g] == 0xFFFF, np.uint64(MISSING_VLAN), vlan16[g])
        count, first, num, last = sig.count, sig.first, sig.first_number, sig.last
        zero = np.zeros(len(g), dtype=np.int64)

        def add(
            name: str, mask: npt.NDArray[np.bool_], key_cols: list[npt.NDArray[np.uint64]], extra: I64 = zero
        ) -> None:
            idx = np.flatnonzero(mask)
            if len(idx):
                self._pending[name].add(
                    [k[idx] for k in key_cols], count[idx], first[idx], num[idx], last[idx], extra[idx]
                )

        g_valid = (g_bits & np.uint64(1)) != 0
        g_src_uni = (g_bits & np.uint64(2)) != 0
        g_dst_uni = (g_bits & np.uint64(4)) != 0
        g_has_dmac = (g_bits & np.uint64(8)) != 0
        g_untunnelled = (g_bits & np.uint64(16)) != 0
        g_hop0 = (g_bits & np.uint64(32)) != 0
        g_smac, g_dmac, g_ver = smac[g], dmac[g], ver[g]
        add("macs", g_valid, [g_smac])
        add("mac_vlans", g_valid & (g_vlan != np.uint64(MISSING_VLAN)), [g_smac, g_vlan])
        # IP sightings: sources and destinations (the lowest packet number at the earliest time wins)
        both = np.concatenate((np.flatnonzero(g_src_uni), np.flatnonzero(g_dst_uni)))
        is_dst = np.zeros(len(both), dtype=bool)
        is_dst[np.count_nonzero(g_src_uni) :] = True
        gi = g[both] if len(both) else both
        if len(both):
            self._pending["ips"].add(
                [ver[gi], np.where(is_dst, dst_hi[gi], src_hi[gi]), np.where(is_dst, dst_lo[gi], src_lo[gi])],
                count[both],
                first[both],
                num[both],
                last[both],
                zero[both],
            )
        add(
            "pairs",
            g_src_uni & g_valid & g_untunnelled,
            [g_smac, g_ver, src_hi[g], src_lo[g], g_vlan],
            np.where(g_hop0, count, 0),
        )
        add("dst_pairs", g_dst_uni & g_has_dmac & g_untunnelled, [g_dmac, g_ver, dst_hi[g], dst_lo[g], g_vlan])

    def flush(self) -> None:
        """Merge the pending batch aggregates (or the C accumulator's tables) into the accumulators."""
        acc = self._acc
        if acc is not None and len(acc):
            for table in range(len(ACCUMULATORS)):
                n, raw_keys, raw_values = acc.export(table)
                self._absorb_export(table, n, raw_keys, raw_values, self._acc_captures)
            acc.clear()
        capture = self._pending_capture
        if capture is None:
            return
        for name in ACCUMULATORS:
            drained = self._pending[name].drain()
            self._absorb(name, ((k, c, first, capture, num, last, e) for k, c, first, num, last, e in drained))

    def _absorb_export(
        self, table: int, n: int, raw_keys: bytes, raw_values: bytes, captures: Sequence[CaptureId]
    ) -> None:
        """Merge one table of a C accumulator's export (``Sightings.export``) into its dictionary."""
        if n == 0:
            return
        keys = np.frombuffer(raw_keys, dtype=np.uint64).reshape(n, -1)
        values = np.frombuffer(raw_values, dtype=np.int64).reshape(n, 6)
        key_cols = [keys[:, j].tolist() for j in range(keys.shape[1])]
        self._absorb(
            ACCUMULATORS[table],
            (
                ([col[g] for col in key_cols], count, first, captures[cap], number, last, extra)
                for g, (count, first, cap, number, last, extra) in enumerate(values.tolist())
            ),
        )

    def _capture_number(self, capture: CaptureId) -> int:
        """The number the C accumulator knows ``capture`` by (``_acc_captures`` maps it back)."""
        index = self._acc_index.get(capture)
        if index is None:
            index = self._acc_index[capture] = len(self._acc_captures)
            self._acc_captures.append(capture)
        return index

    def _only_in_c(self) -> bool:
        """Everything accumulated so far is in the C accumulator (nothing flushed or pending yet)."""
        return (
            self._acc is not None
            and self._pending_capture is None
            and not (self._macs or self._mac_vlans or self._pairs or self._dst_pairs or self._ips)
        )

    def _absorb(self, name: str, rows: Iterable[tuple[list[int], int, int, CaptureId, int, int, int]]) -> None:
        """Merge aggregated sightings ``(key columns, count, first, capture, number, last, extra)`` of one
        accumulator (named as in ``ACCUMULATORS``) into its dictionary."""
        if name == "pairs":
            for k, count, first, capture, num, last, hops in rows:
                pkey = (_mac(k[0]), _ip(k[1], k[2], k[3]), _vlan(k[4]))
                pair = self._pairs.get(pkey)
                if pair is None:
                    pair = self._pairs[pkey] = _SourcePair(Span.of(count, first, capture, num, last))
                else:
                    pair.span.absorb(count, first, capture, num, last)
                pair.hop0 += hops
                pair.routed += count - hops
            return
        key_of: Callable[[list[int]], Any] = _ACCUMULATOR_KEYS[name]
        target: dict[Any, Span] = getattr(self, "_" + name)
        for k, count, first, capture, num, last, _extra in rows:
            key = key_of(k)
            span = target.get(key)
            if span is None:
                target[key] = Span.of(count, first, capture, num, last)
            else:
                span.absorb(count, first, capture, num, last)

    def _absorb_c(self, captures: Sequence[CaptureId], exports: Sequence[tuple[int, bytes, bytes]]) -> None:
        """Add a C accumulator's exported tables (sighted after everything here), into this builder's C
        accumulator when there is one, else into the dictionaries."""
        if native.c_accum is None or (self._acc is None and self._pending_capture is not None):
            self.flush()  # what is here came first
            for table, (n, raw_keys, raw_values) in enumerate(exports):
                self._absorb_export(table, n, raw_keys, raw_values, captures)
            return
        if self._acc is None:
            self._acc = native.c_accum.Sightings()
        numbers = np.array([self._capture_number(c) for c in captures], dtype=np.int64).tobytes()
        for table, (n, raw_keys, raw_values) in enumerate(exports):
            self._acc.absorb(table, n, raw_keys, raw_values, numbers)

    def merge(self, other: InventoryBuilder) -> None:
        """Add everything ``other`` accumulated, as if its packets came after this builder's (parallel analysis
        of several files merges the per-file builders in file order: the same result as one builder)."""
        if other._only_in_c() and (self._acc is not None or self._pending_capture is None):
            # C tables into C tables (exact: everything this builder flushed came before its C tables)
            captures = other._acc_captures
            other_exports = [other._acc.export(t) for t in range(len(ACCUMULATORS))]
            other._acc = None
            self._absorb_c(captures, other_exports)
        self.flush()
        other.flush()
        spans: list[tuple[dict[Any, Span], dict[Any, Span]]] = [
            (self._macs, other._macs),
            (self._mac_vlans, other._mac_vlans),
            (self._ips, other._ips),
            (self._dst_pairs, other._dst_pairs),
        ]
        for mine, theirs in spans:
            for key, span in theirs.items():
                have = mine.get(key)
                if have is None:
                    mine[key] = span
                else:
                    have.merge(span)
        for pkey, pair in other._pairs.items():
            have_pair = self._pairs.get(pkey)
            if have_pair is None:
                self._pairs[pkey] = pair
            else:
                have_pair.span.merge(pair.span)
                have_pair.hop0 += pair.hop0
                have_pair.routed += pair.routed
        for fkey, fact in other._facts.items():
            have_fact = self._facts.get(fkey)
            if have_fact is None:
                self._facts[fkey] = fact
            else:
                have_fact.span.merge(fact.span)
                have_fact.confidence = max(have_fact.confidence, fact.confidence)

    def add_observation(self, obs: Observation) -> None:
        """Account one dissector observation (repeats extend its span and keep the highest confidence)."""
        key = (obs.subject.kind, obs.subject.value, obs.attribute, obs.value, obs.source)
        fact = self._facts.get(key)
        if fact is None:
            fact = self._facts[key] = _Fact(
                obs.confidence, Span(obs.ts_ns, obs.packet.capture, obs.packet.number), obs.vlan
            )
        elif obs.confidence > fact.confidence:
            fact.confidence = obs.confidence
        fact.span.see(obs.ts_ns, obs.packet.capture, obs.packet.number)
        if obs.count > 1:
            fact.span.count += obs.count - 1

    def add_observations(self, observations: Iterable[Observation]) -> None:
        """Account several observations."""
        for obs in observations:
            self.add_observation(obs)

    # --- resolution ------------------------------------------------------------------------------------------

    def resolve(
        self, rename: Mapping[CaptureId, CaptureId] | None = None, catalog: Catalog | None = None
    ) -> Resolution:
        """Resolve everything accumulated so far into devices (deterministic: sorted, stable ids).

        ``rename`` maps the capture ids used while accumulating to final ones (a capture's id is its hash,
        known only once the whole file has been read). ``catalog``'s fingerprint rules add their evidence to
        every device (``inventory.catalog``).
        """
        names = dict(rename or {})
        macs, mac_vlans, ips, pairs, dst_pairs = self._tables()
        drafts: dict[bytes, _DeviceDraft] = {}
        for mac, span in macs.items():
            draft = self._mac_draft(drafts, mac, span)
            draft.add_evidence("mac", mac_str(mac), "ethernet-source", 1.0, span)
        for (kind, subject, attribute, _value, source), fact in self._facts.items():
            if kind is SubjectKind.MAC and attribute is not Attribute.IP:
                mac = mac_bytes(subject)
                if mac not in drafts:
                    self._mac_draft(drafts, mac, fact.span).add_evidence("mac", subject, source, 1.0, fact.span)
        for (mac, vlan), vspan in mac_vlans.items():
            drafts[mac].vlans[vlan] = vspan
            drafts[mac].add_evidence("vlan", str(vlan), "802.1q", 1.0, vspan)

        routers = _routers(pairs)
        bindings, routed_via = self._bindings(routers, pairs, dst_pairs, macs)
        for b in bindings:
            if b.mac not in drafts:
                self._mac_draft(drafts, b.mac, b.span).add_evidence("mac", mac_str(b.mac), b.source, 1.0, b.span)
        for mac in routers:
            if mac in drafts:
                drafts[mac].router = True
                drafts[mac].add_evidence("role", "router", "routed-ttl", 0.7, pairs.first_routed(mac))

        owners: dict[bytes, list[tuple[DeviceId, Span]]] = {}
        for b in bindings:
            draft = drafts[b.mac]
            ip_text = ip_str(b.ip)
            key = (ip_text, b.vlan)
            current = draft.addresses.get(key)
            if current is None:
                merged = Span(b.span.first_ns, b.span.capture, b.span.number)
                merged.merge(b.span)
                draft.addresses[key] = (merged, b.source, b.confidence)
            else:
                current[0].merge(b.span)
                if b.confidence > current[2]:
                    draft.addresses[key] = (current[0], b.source, b.confidence)
            draft.add_evidence("ip", ip_text, b.source, b.confidence, b.span)
            owners.setdefault(b.ip, []).append((draft.id, b.span))

        ip_drafts: dict[bytes, _DeviceDraft] = {}
        for ip, span in ips.items():
            if ip in owners:
                continue
            ip_text = ip_str(ip)
            draft = _DeviceDraft(id=DeviceId(f"ip:{ip_text}"), kind=DeviceKind.IP, mac=None, span=span)
            draft.addresses[(ip_text, None)] = (span, "ip-header", 1.0)
            draft.add_evidence("ip", ip_text, "ip-header", 1.0, span)
            via = routed_via.get(ip)
            if via is not None:
                router_mac, via_span = via
                draft.via = f"mac:{mac_str(router_mac)}"
                draft.add_evidence("via", draft.via, "routed-ttl", 0.7, via_span)
            ip_drafts[ip] = draft
            owners[ip] = [(draft.id, span)]

        by_id = {d.id: d for d in (*drafts.values(), *ip_drafts.values())}
        for (kind, subject, attribute, value, source), fact in self._facts.items():
            if attribute is Attribute.IP:
                continue
            if kind is SubjectKind.MAC:
                targets = [drafts[mac_bytes(subject)]]
            else:
                # an address owned several times over (bindings by ARP, DHCP, source pairs …) is one device each
                targets = [by_id[dev] for dev in dict.fromkeys(dev for dev, _ in owners.get(ip_bytes(subject), []))]
            for draft in targets:
                draft.add_evidence(attribute.value, value, source, fact.confidence, fact.span)
                if attribute is Attribute.HOSTNAME:
                    draft.hostnames[value] = max(draft.hostnames.get(value, 0.0), fact.confidence)

        devices = sorted((self._finish(d, names, catalog) for d in by_id.values()), key=lambda d: d.id)
        owner_table = {
            ip: tuple(sorted(((dev, s.first_ns, s.last_ns) for dev, s in lst), key=lambda o: (o[1], o[0])))
            for ip, lst in owners.items()
        }
        return Resolution(devices=tuple(devices), owners=owner_table)

    def _mac_draft(self, drafts: dict[bytes, _DeviceDraft], mac: bytes, span: Span) -> _DeviceDraft:
        draft = drafts.get(mac)
        if draft is None:
            copy = Span(span.first_ns, span.capture, span.number)
            copy.merge(span)
            draft = drafts[mac] = _DeviceDraft(
                id=DeviceId(f"mac:{mac_str(mac)}"), kind=DeviceKind.MAC, mac=mac, span=copy
            )
            vendor = vendor_of(mac)
            if vendor is not None:
                draft.add_evidence("vendor", vendor, "oui", OUI_CONFIDENCE, span)
            elif (convention := local_convention(mac)) is not None:
                draft.add_evidence("vendor", convention, "local-mac-convention", 0.5, span)
        else:
            draft.span.merge(span)
        return draft

    def _tables(
        self,
    ) -> tuple[dict[bytes, Span], dict[tuple[bytes, int], Span], dict[bytes, Span], _PairTable, _PairTable]:
        """Everything sighted, for ``resolve``: the MAC, MAC+VLAN and IP spans, and the source and destination
        pairs as columns. When all of it is still in the C accumulator (the fast path), it is read from there
        and left in place; otherwise it is flushed into the dictionaries first."""
        if self._only_in_c():
            exports = [self._acc.export(t) for t in range(len(ACCUMULATORS))]
            captures = self._acc_captures
            spans: list[dict[Any, Span]] = []
            for table in range(3):
                n, raw_keys, raw_values = exports[table]
                key_of = _ACCUMULATOR_KEYS[ACCUMULATORS[table]]
                keys = np.frombuffer(raw_keys, dtype=np.uint64).reshape(n, -1).tolist() if n else []
                values = np.frombuffer(raw_values, dtype=np.int64).reshape(n, 6).tolist() if n else []
                spans.append(
                    {
                        key_of(k): Span.of(count, first, captures[cap], number, last)
                        for k, (count, first, cap, number, last, _extra) in zip(keys, values, strict=True)
                    }
                )
            (n_p, keys_p, values_p), (n_d, keys_d, values_d) = exports[3], exports[4]
            pairs = _PairTable.of_export(n_p, keys_p, values_p, captures)
            return spans[0], spans[1], spans[2], pairs, _PairTable.of_export(n_d, keys_d, values_d, captures)
        self.flush()
        return (
            self._macs,
            self._mac_vlans,
            self._ips,
            _PairTable.of_dict({k: (p.span, p.hop0) for k, p in self._pairs.items()}),
            _PairTable.of_dict({k: (s, 0) for k, s in self._dst_pairs.items()}),
        )

    def _bindings(
        self, routers: set[bytes], pairs: _PairTable, dst_pairs: _PairTable, macs: Mapping[bytes, Span]
    ) -> tuple[list[_Binding], dict[bytes, tuple[bytes, Span]]]:
        """Decide which MACs own which IPs; also return, for routed IPs, the router they came through.

        Candidates: the MAC->IP facts of dissectors (ARP, DHCP, NDP); source pairs, by their IP and TTLs
        (``link-local`` 0.9, ``ip-source`` 0.8 with an initial TTL, else ``only-source`` 0.5 - unless the MAC is a
        router or the IP is global: then the IP is behind that router); destination pairs to a MAC that sent
        frames itself and is no router (``ip-destination`` 0.4). Per IP, every MAC with a strong (>= 0.8)
        candidate owns it, with all its candidates; else, unless the IP is behind a router, the MAC of the best
        candidate (confidence, then packets, then MAC) does. Over columns: only what is chosen becomes objects.
        """
        facts = [
            (mac_bytes(subject), ip_bytes(value), source, fact)
            for (kind, subject, attribute, value, source), fact in self._facts.items()
            if kind is SubjectKind.MAC and attribute is Attribute.IP
        ]
        router_macs = np.array([int.from_bytes(m, "big") for m in routers], dtype=np.uint64)
        link_local = pairs.ip_flag(is_link_local_ip)
        hop0 = pairs.hop0 > 0
        behind = ~link_local & ~hop0 & (np.isin(pairs.mac, router_macs) | pairs.ip_flag(is_global_ip))
        pair_rows = np.flatnonzero(~behind)
        pair_source = np.where(link_local, 0, np.where(hop0, 1, 2))[pair_rows]  # index into PAIR_SOURCES
        via_rows = np.flatnonzero(behind)
        dm = dst_pairs.mac
        source_macs = np.array([int.from_bytes(m, "big") for m in macs], dtype=np.uint64)
        to_host = np.isin(dm, source_macs) & ~np.isin(dm, router_macs) & (((dm >> np.uint64(40)) & np.uint64(1)) == 0)
        dst_rows = np.flatnonzero(to_host & (dm != 0))

        # the candidates as columns: facts first, then source pairs, then destination pairs
        fact_words = [_ip_words(ip) for _, ip, _, _ in facts]
        n_f, n_p = len(facts), len(pair_rows)

        def column(fact_values: list[Any], pair_values: Any, dst_values: Any, dtype: Any) -> npt.NDArray[Any]:
            return np.concatenate((np.array(fact_values, dtype=dtype), pair_values, dst_values)).astype(dtype)

        ver = column([w[0] for w in fact_words], pairs.ver[pair_rows], dst_pairs.ver[dst_rows], np.uint64)
        hi = column([w[1] for w in fact_words], pairs.hi[pair_rows], dst_pairs.hi[dst_rows], np.uint64)
        lo = column([w[2] for w in fact_words], pairs.lo[pair_rows], dst_pairs.lo[dst_rows], np.uint64)
        mac = column([int.from_bytes(m, "big") for m, _, _, _ in facts], pairs.mac[pair_rows], dm[dst_rows], np.uint64)
        conf = column(
            [f.confidence for _, _, _, f in facts],
            PAIR_CONFIDENCE[pair_source],
            np.full(len(dst_rows), 0.4),
            np.float64,
        )
        count = column(
            [f.span.count for _, _, _, f in facts], pairs.count[pair_rows], dst_pairs.count[dst_rows], np.int64
        )
        # one number per IP, over the candidates and the routed addresses alike
        if len(ver) + len(via_rows) == 0:
            return [], {}
        ip_id_all, n_ip = group_ids(
            [np.concatenate((ver, pairs.ver[via_rows])), np.concatenate((hi, pairs.hi[via_rows])),
             np.concatenate((lo, pairs.lo[via_rows]))]
        )  # fmt: skip
        ip_id, via_ip = ip_id_all[: len(ver)], ip_id_all[len(ver) :]

        # behind a router: the router that forwarded most packets (ties: earliest, lowest MAC, lowest VLAN)
        routed_via: dict[bytes, tuple[bytes, Span]] = {}
        behind_ip = np.zeros(n_ip, dtype=bool)
        if len(via_rows):
            behind_ip[via_ip] = True
            vr = via_rows
            order = np.lexsort((pairs.vlan[vr], pairs.mac[vr], pairs.first[vr], -pairs.count[vr], via_ip))
            firsts = order[np.r_[True, via_ip[order][1:] != via_ip[order][:-1]]]
            for k in firsts.tolist():
                row = int(vr[k])
                routed_via[pairs.ip(row)] = (_mac(int(pairs.mac[row])), pairs.span(row))

        strong = conf >= STRONG
        ip_strong = np.zeros(n_ip, dtype=bool)
        ip_strong[ip_id[strong]] = True
        pair_of, n_pairs = group_ids([ip_id.astype(np.uint64), mac])
        mac_strong = np.zeros(n_pairs, dtype=bool)
        mac_strong[pair_of[strong]] = True
        # without a strong candidate: the best one's MAC (the last in ascending (confidence, packets, MAC) order)
        order = np.lexsort((mac, count, conf, ip_id))
        last = order[np.r_[ip_id[order][1:] != ip_id[order][:-1], True]] if len(order) else order
        winner = np.zeros(n_ip, dtype=np.uint64)
        winner[ip_id[last]] = mac[last]
        chosen = np.where(ip_strong[ip_id], mac_strong[pair_of], ~behind_ip[ip_id] & (mac == winner[ip_id]))

        out: list[_Binding] = []
        for k in np.flatnonzero(chosen).tolist():
            if k < n_f:
                m, ip, source, fact = facts[k]
                out.append(_Binding(m, ip, fact.vlan, source, fact.confidence, fact.span))
            elif k < n_f + n_p:
                row = int(pair_rows[k - n_f])
                source = PAIR_SOURCES[int(pair_source[k - n_f])]
                out.append(
                    _Binding(_mac(int(pairs.mac[row])), pairs.ip(row), pairs.vlan_of(row), source,
                             float(PAIR_CONFIDENCE[int(pair_source[k - n_f])]), pairs.span(row))
                )  # fmt: skip
            else:
                row = int(dst_rows[k - n_f - n_p])
                out.append(
                    _Binding(_mac(int(dm[row])), dst_pairs.ip(row), dst_pairs.vlan_of(row), "ip-destination", 0.4,
                             dst_pairs.span(row))
                )  # fmt: skip
        out.sort(key=lambda c: (c.ip, c.mac, c.source, c.vlan or 0))
        return out, routed_via

    @staticmethod
    def _finish(d: _DeviceDraft, names: Mapping[CaptureId, CaptureId], catalog: Catalog | None) -> Device:
        addresses = tuple(
            AddressUse(
                ip=ip,
                vlan=vlan,
                first_ns=span.first_ns,
                last_ns=span.last_ns,
                source=source,
                confidence=round(conf, 3),
            )
            for (ip, vlan), (span, source, conf) in sorted(
                d.addresses.items(), key=lambda kv: (ip_sort_key(kv[0][0]), kv[0][1] or 0)
            )
        )
        evidence = tuple(
            Evidence(
                attribute=attr,
                value=value,
                source=source,
                confidence=round(conf, 3),
                packet=PacketRef(names.get(span.capture, span.capture), span.number),
                first_ns=span.first_ns,
                last_ns=span.last_ns,
                count=span.count,
            )
            for (attr, value, source), (conf, span) in sorted(d.evidence.items())
        )
        if catalog is not None:
            derived = catalog.derive(evidence)
            if derived:
                evidence = tuple(sorted((*evidence, *derived), key=lambda e: (e.attribute, e.value, e.source)))
        vendor, model, device_type, firmware, os_name = (best_value(evidence, attribute) for attribute in SINGLE_VALUED)
        first = min([d.span.first_ns, *(s.first_ns for s, _, _ in d.addresses.values())])
        last = max([d.span.last_ns, *(s.last_ns for s, _, _ in d.addresses.values())])
        return Device(
            id=d.id,
            kind=d.kind,
            macs=(mac_str(d.mac),) if d.mac is not None else (),
            addresses=addresses,
            vlans=tuple(sorted(d.vlans)),
            vendor=vendor,
            model=model,
            device_type=device_type,
            firmware=firmware,
            os=os_name,
            hostnames=tuple(name for name, _ in sorted(d.hostnames.items(), key=lambda kv: (-kv[1], kv[0]))),
            first_ns=first,
            last_ns=last,
            evidence=evidence,
            mac_randomized=d.mac is not None and is_local_mac(d.mac),
            router=d.router,
            via=d.via,
        )
