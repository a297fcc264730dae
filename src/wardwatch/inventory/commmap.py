"""The communication map: flows aggregated into edges between devices, per service."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

import numpy as np

from wardwatch.model.flow import Edge, Flow, FlowColumns
from wardwatch.model.inventory import DeviceId

EdgeKey = tuple[DeviceId, DeviceId, int, int | None]


def build_edges(flows: Iterable[Flow]) -> list[Edge]:
    """One edge per (initiator device, responder device, protocol, responder port).

    Flows whose responder is not a device (broadcast and multicast destinations) have no edge; they stay in
    the flow list.
    """
    if isinstance(flows, FlowColumns):
        return _edges_of_columns(flows)
    acc: dict[EdgeKey, list[int]] = {}
    get = acc.get
    for f in flows:
        src, dst = f.src_device, f.dst_device
        if src is None or dst is None:
            continue
        key = (src, dst, f.proto, f.dst_port)
        a = get(key)
        packets = f.packets_src + f.packets_dst
        size = f.bytes_src + f.bytes_dst
        if a is None:
            acc[key] = [1, packets, size, f.first_ns, f.last_ns]
        else:
            a[0] += 1
            a[1] += packets
            a[2] += size
            if f.first_ns < a[3]:
                a[3] = f.first_ns
            if f.last_ns > a[4]:
                a[4] = f.last_ns
    return _sorted_edges(acc)


class MapEdges(Sequence[Edge]):
    """The edges of ``flows``, built when first read: a run that only stores its flows (map edges are derived
    from the stored flows when they are read back) never pays for them. Compares equal to any sequence of the
    same edges."""

    __slots__ = ("_edges", "_flows")

    def __init__(self, flows: Sequence[Flow]) -> None:
        self._flows: Sequence[Flow] | None = flows
        self._edges: tuple[Edge, ...] | None = None

    def _built(self) -> tuple[Edge, ...]:
        if self._edges is None:
            assert self._flows is not None
            self._edges = tuple(build_edges(self._flows))
            self._flows = None
        return self._edges

    @overload
    def __getitem__(self, index: int) -> Edge: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Edge, ...]: ...
    def __getitem__(self, index: int | slice) -> Edge | tuple[Edge, ...]:
        return self._built()[index]

    def __len__(self) -> int:
        return len(self._built())

    def __iter__(self) -> Iterator[Edge]:
        return iter(self._built())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MapEdges):
            other = other._built()
        return isinstance(other, Sequence) and self._built() == tuple(other)

    def __hash__(self) -> int:
        return hash(self._built())

    def __repr__(self) -> str:
        return f"MapEdges({self._built()!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (tuple, (self._built(),))


def _sorted_edges(acc: dict[EdgeKey, list[int]]) -> list[Edge]:
    """Edges from per-key ``[flows, packets, bytes, first, last]``, sorted (ties keep ``acc``'s order)."""
    return [
        Edge(
            src_device=k[0],
            dst_device=k[1],
            proto=k[2],
            port=k[3],
            flows=v[0],
            packets=v[1],
            bytes=v[2],
            first_ns=v[3],
            last_ns=v[4],
        )
        for k, v in sorted(acc.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], kv[0][3] or -1))
    ]


def _edges_of_columns(flows: FlowColumns) -> list[Edge]:
    """``build_edges`` over columns: one group-by instead of a loop over flows (same edges, same order)."""
    c = flows.columns
    rows = np.flatnonzero((c["src_device"] >= 0) & (c["dst_device"] >= 0))
    if len(rows) == 0:
        return []
    keys = (c["src_device"][rows], c["dst_device"][rows], c["proto"][rows], c["dst_port"][rows])
    order = np.lexsort(keys[::-1])
    change = np.zeros(len(rows), dtype=bool)
    change[0] = True
    for k in keys:
        ks = k[order]
        change[1:] |= ks[1:] != ks[:-1]
    starts = np.flatnonzero(change)
    r = rows[order]
    packets = np.add.reduceat((c["packets_src"] + c["packets_dst"])[r], starts)
    size = np.add.reduceat((c["bytes_src"] + c["bytes_dst"])[r], starts)
    first = np.minimum.reduceat(c["first_ns"][r], starts)
    last = np.maximum.reduceat(c["last_ns"][r], starts)
    count = np.diff(np.append(starts, len(r)))
    first_row = np.minimum.reduceat(r, starts)
    texts = flows.texts
    by_text = np.empty(len(texts), dtype=np.int64)
    by_text[np.array(sorted(range(len(texts)), key=texts.__getitem__), dtype=np.int64)] = np.arange(len(texts))
    g_src, g_dst, g_proto, g_port = (k[order][starts] for k in keys)
    # the loop's order: by (source, destination, protocol, port or -1), ties in order of the groups' first flows
    sort_port = np.where(g_port <= 0, -1, g_port)
    final = np.lexsort((first_row, sort_port, g_proto, by_text[g_dst], by_text[g_src]))
    columns = (g_src, g_dst, g_proto, g_port, count, packets, size, first, last)
    return [
        Edge(
            src_device=DeviceId(texts[src]),
            dst_device=DeviceId(texts[dst]),
            proto=proto,
            port=None if port < 0 else port,
            flows=n,
            packets=pk,
            bytes=by,
            first_ns=fi,
            last_ns=la,
        )  # fmt: skip
        for src, dst, proto, port, n, pk, by, fi, la in zip(*(col[final].tolist() for col in columns), strict=True)
    ]
