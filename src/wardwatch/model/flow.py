"""Flows (bidirectional 5-tuple conversations) and communication-map edges."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np
import numpy.typing as npt

from wardwatch.model.addr import ip_sort_key
from wardwatch.model.inventory import DeviceId
from wardwatch.model.observation import CaptureId

PROTO_NAMES = {1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 58: "icmpv6", 132: "sctp"}
PROTO_NUMBERS = {name: number for number, name in PROTO_NAMES.items()}


def proto_name(proto: int) -> str:
    """``6`` -> ``"tcp"``; unnamed protocols keep their number (``"103"``)."""
    return PROTO_NAMES.get(proto, str(proto))


def proto_number(name: str) -> int:
    """``"tcp"`` -> 6; a decimal string is accepted for unnamed protocols."""
    if name in PROTO_NUMBERS:
        return PROTO_NUMBERS[name]
    return int(name)


def flow_sort_key(f: Flow) -> tuple[int, int, tuple[int, int], int, tuple[int, int], int, str]:
    """Canonical flow order: first packet time, protocol, endpoints (numerically), capture."""
    return (
        f.first_ns,
        f.proto,
        ip_sort_key(f.src_ip),
        -1 if f.src_port is None else f.src_port,
        ip_sort_key(f.dst_ip),
        -1 if f.dst_port is None else f.dst_port,
        f.capture,
    )


@dataclass(frozen=True, slots=True)
class Flow:
    """A bidirectional conversation; ``src`` is the initiator (first SYN, else SYN-ACK receiver, else first sender)."""

    capture: CaptureId
    proto: int
    src_ip: str
    src_port: int | None
    dst_ip: str
    dst_port: int | None
    first_ns: int
    last_ns: int
    packets_src: int
    """Packets sent by the initiator."""
    packets_dst: int
    bytes_src: int
    """Original frame bytes sent by the initiator."""
    bytes_dst: int
    tcp_flags_src: int = 0
    tcp_flags_dst: int = 0
    initiator: str = "first-packet"
    """How the initiator was decided: ``syn``, ``syn-ack`` or ``first-packet``."""
    vlans: tuple[int, ...] = ()
    src_device: DeviceId | None = None
    dst_device: DeviceId | None = None

    @property
    def packets(self) -> int:
        """Packets in both directions."""
        return self.packets_src + self.packets_dst

    @property
    def bytes(self) -> int:
        """Frame bytes in both directions."""
        return self.bytes_src + self.bytes_dst

    @property
    def service(self) -> str:
        """``tcp/2575``; protocols without ports are just their name."""
        name = proto_name(self.proto)
        return name if self.dst_port is None else f"{name}/{self.dst_port}"


@dataclass(frozen=True, slots=True)
class Edge:
    """Aggregate of the flows from one device to another for one service (protocol + responder port)."""

    src_device: DeviceId
    dst_device: DeviceId
    proto: int
    port: int | None
    flows: int
    packets: int
    bytes: int
    first_ns: int
    last_ns: int

    @property
    def service(self) -> str:
        """``tcp/104``; protocols without ports are just their name."""
        name = proto_name(self.proto)
        return name if self.port is None else f"{name}/{self.port}"


#: Column names of ``FlowColumns`` (every one an int64 array; text columns index ``FlowColumns.texts``).
FLOW_COLUMNS = (
    "capture", "proto", "src_ip", "src_port", "dst_ip", "dst_port", "first_ns", "last_ns", "packets_src",
    "packets_dst", "bytes_src", "bytes_dst", "tcp_flags_src", "tcp_flags_dst", "initiator", "src_device",
    "dst_device",
)  # fmt: skip
#: Columns holding an index into ``FlowColumns.texts`` (-1 = None for the devices).
TEXT_COLUMNS = frozenset({"capture", "src_ip", "dst_ip", "initiator", "src_device", "dst_device"})
#: Columns where -1 stands for None.
OPTIONAL_COLUMNS = frozenset({"src_port", "dst_port", "src_device", "dst_device"})
#: Flows built per slice when iterating (bounds the temporary lists).
_SLICE = 16_384


class FlowColumns(Sequence[Flow]):
    """Flows held as columns, as the fast path produces them: a read-only sequence of ``Flow`` built on access.

    A Flow object per flow costs more than everything else the flow path does; the store, the map and the
    counters read the columns instead. Equal to any sequence of the same flows in the same order.
    """

    __slots__ = ("columns", "texts", "vlan_ptr", "vlan_values")

    def __init__(
        self,
        texts: Sequence[str],
        columns: Mapping[str, npt.NDArray[np.int64]],
        vlan_ptr: npt.NDArray[np.int64],
        vlan_values: npt.NDArray[np.int64],
    ) -> None:
        self.texts = tuple(texts)
        """Captures, addresses, initiators and device ids the text columns point into."""
        self.columns = {name: np.asarray(columns[name], dtype=np.int64) for name in FLOW_COLUMNS}
        """``FLOW_COLUMNS`` -> int64 array (see ``TEXT_COLUMNS`` and ``OPTIONAL_COLUMNS``)."""
        self.vlan_ptr = np.asarray(vlan_ptr, dtype=np.int64)
        """Flow ``i``'s VLANs are ``vlan_values[vlan_ptr[i]:vlan_ptr[i + 1]]`` (sorted)."""
        self.vlan_values = np.asarray(vlan_values, dtype=np.int64)

    @classmethod
    def empty(cls) -> FlowColumns:
        """No flows."""
        none = np.zeros(0, dtype=np.int64)
        return cls((), dict.fromkeys(FLOW_COLUMNS, none), np.zeros(1, dtype=np.int64), none)

    @classmethod
    def concat(cls, parts: Sequence[FlowColumns]) -> FlowColumns:
        """The flows of ``parts`` one after the other (text tables merged)."""
        if len(parts) == 1:
            return parts[0]
        texts: dict[str, int] = {}
        cols: dict[str, list[npt.NDArray[np.int64]]] = {name: [] for name in FLOW_COLUMNS}
        ptrs: list[npt.NDArray[np.int64]] = [np.zeros(1, dtype=np.int64)]
        values: list[npt.NDArray[np.int64]] = []
        base = 0
        for part in parts:
            remap = np.array([texts.setdefault(t, len(texts)) for t in part.texts] + [-1], dtype=np.int64)
            for name in FLOW_COLUMNS:
                col = part.columns[name]
                cols[name].append(remap[col] if name in TEXT_COLUMNS else col)  # -1 stays -1 (last entry)
            ptrs.append(part.vlan_ptr[1:] + base)
            values.append(part.vlan_values)
            base += len(part.vlan_values)
        return cls(
            list(texts),
            {name: np.concatenate(c) if c else np.zeros(0, dtype=np.int64) for name, c in cols.items()},
            np.concatenate(ptrs),
            np.concatenate(values) if values else np.zeros(0, dtype=np.int64),
        )

    def take(self, order: npt.NDArray[np.int64]) -> FlowColumns:
        """The flows at positions ``order``, in that order."""
        lengths = np.diff(self.vlan_ptr)[order]
        ptr = np.zeros(len(order) + 1, dtype=np.int64)
        np.cumsum(lengths, out=ptr[1:])
        starts = self.vlan_ptr[:-1][order]
        idx = np.repeat(starts - ptr[:-1], lengths) + np.arange(int(ptr[-1]), dtype=np.int64)
        return FlowColumns(
            self.texts, {name: col[order] for name, col in self.columns.items()}, ptr, self.vlan_values[idx]
        )

    def sorted(self) -> FlowColumns:
        """In canonical order (``flow_sort_key``); stable, like ``sorted``."""
        texts = self.texts
        c = self.columns
        used = np.unique(np.concatenate((c["src_ip"], c["dst_ip"]))).tolist()
        order_ip = sorted(used, key=lambda i: ip_sort_key(texts[i]))
        rank = np.full(len(texts) + 1, -1, dtype=np.int64)
        rank[np.array(order_ip, dtype=np.int64)] = np.arange(len(order_ip), dtype=np.int64)
        by_text = np.empty(len(texts) + 1, dtype=np.int64)
        by_text[np.array(sorted(range(len(texts)), key=texts.__getitem__), dtype=np.int64)] = np.arange(len(texts))
        order = np.lexsort(
            (by_text[c["capture"]], c["dst_port"], rank[c["dst_ip"]], c["src_port"], rank[c["src_ip"]], c["proto"],
             c["first_ns"])
        )  # fmt: skip
        return self.take(order.astype(np.int64))

    def __len__(self) -> int:
        return len(self.columns["proto"])

    @overload
    def __getitem__(self, index: int) -> Flow: ...
    @overload
    def __getitem__(self, index: slice) -> FlowColumns: ...
    def __getitem__(self, index: int | slice) -> Flow | FlowColumns:
        if isinstance(index, slice):
            return self.take(np.arange(len(self), dtype=np.int64)[index])
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("flow index out of range")
        return next(self._build(index, index + 1))

    def __iter__(self) -> Iterator[Flow]:
        for start in range(0, len(self), _SLICE):
            yield from self._build(start, min(start + _SLICE, len(self)))

    def _build(self, lo: int, hi: int) -> Iterator[Flow]:
        texts = (*self.texts, None)  # index -1 -> None
        c = {name: col[lo:hi].tolist() for name, col in self.columns.items()}
        p0 = int(self.vlan_ptr[lo])
        ptr = (self.vlan_ptr[lo : hi + 1] - p0).tolist()
        vals = self.vlan_values[p0 : int(self.vlan_ptr[hi])].tolist()
        for k, (
            cap,
            proto,
            sip,
            sport,
            dip,
            dport,
            first,
            last,
            pks,
            pkd,
            bys,
            byd,
            fls,
            fld,
            how,
            sdev,
            ddev,
        ) in enumerate(zip(*(c[name] for name in FLOW_COLUMNS), strict=True)):
            yield Flow(
                capture=CaptureId(texts[cap] or ""), proto=proto, src_ip=texts[sip] or "",
                src_port=None if sport < 0 else sport, dst_ip=texts[dip] or "", dst_port=None if dport < 0 else dport,
                first_ns=first, last_ns=last, packets_src=pks, packets_dst=pkd, bytes_src=bys, bytes_dst=byd,
                tcp_flags_src=fls, tcp_flags_dst=fld, initiator=texts[how] or "",
                vlans=tuple(vals[ptr[k] : ptr[k + 1]]),
                src_device=None if sdev < 0 else DeviceId(texts[sdev] or ""),
                dst_device=None if ddev < 0 else DeviceId(texts[ddev] or ""),
            )  # fmt: skip

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"FlowColumns({len(self)} flows)"
