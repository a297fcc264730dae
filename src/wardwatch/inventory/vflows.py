"""The flow table over decoded columns: the same flows as ``FlowTable``, aggregated a batch at a time.

Packets are grouped by their canonical key (protocol and the two endpoints, the smaller one first) with one
stable sort per batch. A group whose packets cannot change flow boundaries — no pure SYN after its first
packet, no idle gap longer than the timeout — is summed with ``reduceat`` and merged into the live table with
array operations. The rare group that might split (TCP port reuse, SYN retransmissions, long idle UDP) is
replayed packet by packet with exactly ``FlowTable``'s rules. Keys are hashed to 64 bits for grouping; every
group is checked against the full key, and a collision raises ``HashCollision`` (the engine then uses the
reference path for that file).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from wardwatch.capture.vector import Columns
from wardwatch.inventory import native
from wardwatch.inventory.flows import ACK, FIN, RST, SYN, Timeouts
from wardwatch.model.addr import ip_str
from wardwatch.model.flow import Flow, FlowColumns
from wardwatch.model.inventory import DeviceId
from wardwatch.model.observation import CaptureId

if TYPE_CHECKING:
    from wardwatch.inventory.devices import Resolution

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

INITIATORS = ("first-packet", "syn", "syn-ack")
#: Flows built per slice by ``flows`` (bounds the temporary Python lists).
FLOW_SLICE = 20_000
KEY_FIELDS = ("ver", "proto", "a_hi", "a_lo", "a_port", "b_hi", "b_lo", "b_port")
STATE_FIELDS = (
    "init_a", "first", "last", "pk_a", "pk_b", "by_a", "by_b", "fl_a", "fl_b", "how", "closed", "syn_seq",
    "ts0",  # time of the packet that created the flow
    "syn_any",  # a pure SYN was among its packets
)  # fmt: skip
#: The state columns ``_accum.FlowAcc.export`` gives, in its order.
C_STATE_FIELDS = (
    "inst", "init_a", "first", "last", "pk_a", "pk_b", "by_a", "by_b", "fl_a", "fl_b", "how", "closed", "syn_seq",
    "ts0", "syn_any",
)  # fmt: skip
M1, M2, M3, M4 = (
    np.uint64(x) for x in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0xD6E8FEB86659FD93)
)


class NotMergeable(RuntimeError):  # noqa: N818 - it is an event, not a failure of the caller
    """Two parts of a file cannot be merged exactly (a connection restarts at the boundary)."""


class HashCollision(RuntimeError):  # noqa: N818 - it is an event, not a failure of the caller
    """Two different flow keys hashed to the same 64-bit value (vanishingly rare; the caller falls back)."""


def _mix(h: U64) -> U64:
    h = h ^ (h >> np.uint64(30))
    h = h * M2
    h = h ^ (h >> np.uint64(27))
    h = h * M3
    return h ^ (h >> np.uint64(31))


@dataclass(slots=True)
class _Done:
    """A finished flow (split off by a new connection or an idle gap)."""

    key: tuple[int, ...]
    state: dict[str, int]
    vlans: set[int]


class VectorFlowTable:
    """Flows of one capture, built from ``Columns`` batches; ``flows`` gives what ``FlowTable.flows`` gives."""

    def __init__(self, capture: CaptureId, timeouts: Timeouts | None = None) -> None:
        self.capture = capture
        self.timeouts = timeouts or Timeouts()
        self.n = 0
        cap = 1024
        self.hash = np.zeros(cap, dtype=np.uint64)
        self.key = {f: np.zeros(cap, dtype=np.uint64) for f in KEY_FIELDS}
        self.state = {f: np.zeros(cap, dtype=np.int64) for f in STATE_FIELDS}
        self.sorted_hash = np.zeros(0, dtype=np.uint64)
        self.sorted_idx = np.zeros(0, dtype=np.int64)
        self.vlan_codes: list[I64] = []
        self.done: list[_Done] = []

    # --- table storage ---------------------------------------------------------------------------------------

    def _grow(self, need: int) -> None:
        cap = len(self.hash)
        if self.n + need <= cap:
            return
        new_cap = max(cap * 2, self.n + need)
        self.hash = np.resize(self.hash, new_cap)
        for d in (self.key, self.state):
            for f, arr in d.items():
                d[f] = np.resize(arr, new_cap)

    def _lookup(self, hashes: U64) -> I64:
        """Table row of each hash, -1 when absent."""
        if len(self.sorted_hash) == 0:
            return np.full(len(hashes), -1, dtype=np.int64)
        pos = np.searchsorted(self.sorted_hash, hashes)
        pos_c = np.minimum(pos, len(self.sorted_hash) - 1)
        hit = self.sorted_hash[pos_c] == hashes
        return np.where(hit, self.sorted_idx[pos_c], -1)

    def _reindex(self) -> None:
        """Add the rows appended since the last call to the sorted index (merge, not a full sort)."""
        indexed = len(self.sorted_idx)
        if indexed == self.n:
            return
        new_idx = np.arange(indexed, self.n, dtype=np.int64)
        new_hash = self.hash[indexed : self.n]
        order = np.argsort(new_hash, kind="stable")
        new_hash, new_idx = new_hash[order], new_idx[order]
        at = np.searchsorted(self.sorted_hash, new_hash)
        self.sorted_hash = np.insert(self.sorted_hash, at, new_hash)
        self.sorted_idx = np.insert(self.sorted_idx, at, new_idx)

    # --- adding a batch --------------------------------------------------------------------------------------

    def add(self, cols: Columns, usable: npt.NDArray[np.bool_] | None = None) -> None:
        """Account every packet of the batch that belongs to a flow (``usable``: rows to consider, default all)."""
        proto = cols.proto
        port_proto = (proto == 6) | (proto == 17) | (proto == 132)
        has_ports = (cols.sport >= 0) & (cols.dport >= 0)
        eligible = (cols.ipver > 0) & (proto >= 0) & (cols.frag != 2) & (~port_proto | has_ports)
        if usable is not None:
            eligible &= usable
        rows = np.flatnonzero(eligible)
        if len(rows) == 0:
            return
        p = proto[rows].astype(np.uint64)
        ver = cols.ipver[rows].astype(np.uint64)
        sp = np.where(port_proto[rows], cols.sport[rows] + 1, 0).astype(np.uint64)
        dp = np.where(port_proto[rows], cols.dport[rows] + 1, 0).astype(np.uint64)
        s_hi, s_lo, d_hi, d_lo = cols.src_hi[rows], cols.src_lo[rows], cols.dst_hi[rows], cols.dst_lo[rows]
        src_first = (s_hi < d_hi) | ((s_hi == d_hi) & ((s_lo < d_lo) | ((s_lo == d_lo) & (sp <= dp))))
        a_hi = np.where(src_first, s_hi, d_hi)
        a_lo = np.where(src_first, s_lo, d_lo)
        a_port = np.where(src_first, sp, dp)
        b_hi = np.where(src_first, d_hi, s_hi)
        b_lo = np.where(src_first, d_lo, s_lo)
        b_port = np.where(src_first, dp, sp)
        small = (ver << np.uint64(56)) | (p << np.uint64(40)) | (a_port << np.uint64(20)) | b_port
        h = _mix(a_lo * M1 ^ _mix(a_hi + M2) ^ _mix(b_lo * M3 + small) ^ _mix(b_hi * M4 + M1))
        order = np.argsort(h, kind="stable")
        hs = h[order]
        starts = np.flatnonzero(np.concatenate(([True], hs[1:] != hs[:-1])))
        keys = {
            "ver": ver,
            "proto": p,
            "a_hi": a_hi,
            "a_lo": a_lo,
            "a_port": a_port,
            "b_hi": b_hi,
            "b_lo": b_lo,
            "b_port": b_port,
        }
        sorted_keys = {f: v[order] for f, v in keys.items()}
        group_of = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(hs))))
        for v in sorted_keys.values():  # every packet of a group has the group's full key
            if np.any(v != v[starts][group_of]):
                raise HashCollision("flow key hash collision within a batch")
        g_hash = hs[starts]
        g_key = {f: v[starts] for f, v in sorted_keys.items()}
        ti = self._lookup(g_hash)
        known = ti >= 0
        if known.any():
            for f, v in g_key.items():
                if np.any(self.key[f][ti[known]] != v[known]):
                    raise HashCollision("flow key hash collision with the live table")

        r = rows[order]  # batch rows in group order
        ts = cols.batch.ts[r]
        size = cols.batch.wirelen[r]
        flags = cols.tflags[r].astype(np.int64)
        seq = cols.tseq[r]
        from_a = src_first[order]
        vlan = cols.vlan[r].astype(np.int64)
        first_row = np.zeros(len(r), dtype=bool)
        first_row[starts] = True
        checked = ~first_row | known[group_of]
        tcp = sorted_keys["proto"] == 6
        pure_syn = tcp & ((flags & SYN) != 0) & ((flags & ACK) == 0)
        complex_row = checked & pure_syn
        limit_tcp, limit_other = self.timeouts.tcp_ns, self.timeouts.other_ns
        prev_ts = np.concatenate(([0], ts[:-1]))
        gap = np.where(
            first_row, ts - np.where(known[group_of], self.state["last"][np.maximum(ti, 0)][group_of], ts), ts - prev_ts
        )
        if limit_other is not None:
            complex_row |= checked & ~tcp & (gap > limit_other)
        if limit_tcp is not None:
            complex_row |= checked & tcp & (gap > limit_tcp)
        complex_group = np.zeros(len(starts), dtype=bool)
        if complex_row.any():
            complex_group[np.unique(group_of[complex_row])] = True

        simple = ~complex_group
        if simple.any():
            self._merge_simple(simple, starts, group_of, ti, g_hash, g_key, ts, size, flags, seq, from_a, vlan)
        if complex_group.any():
            for g in np.flatnonzero(complex_group).tolist():
                lo = int(starts[g])
                hi = int(starts[g + 1]) if g + 1 < len(starts) else len(r)
                self._replay(
                    int(ti[g]),
                    int(g_hash[g]),
                    {f: int(v[g]) for f, v in g_key.items()},
                    ts[lo:hi],
                    size[lo:hi],
                    flags[lo:hi],
                    seq[lo:hi],
                    from_a[lo:hi],
                    vlan[lo:hi],
                )
        self._reindex()

    def _merge_simple(
        self,
        simple: npt.NDArray[np.bool_],
        starts: I64,
        group_of: I64,
        ti: I64,
        g_hash: U64,
        g_key: dict[str, U64],
        ts: I64,
        size: I64,
        flags: I64,
        seq: I64,
        from_a: npt.NDArray[np.bool_],
        vlan: I64,
    ) -> None:
        fa = from_a.astype(np.int64)
        pk_a = np.add.reduceat(fa, starts)
        count = np.diff(np.append(starts, len(ts)))
        by_all = np.add.reduceat(size, starts)
        by_a = np.add.reduceat(size * fa, starts)
        fl_a = np.bitwise_or.reduceat(flags * fa, starts)
        fl_b = np.bitwise_or.reduceat(flags * (1 - fa), starts)
        tmin = np.minimum.reduceat(ts, starts)
        tmax = np.maximum.reduceat(ts, starts)
        closed = np.bitwise_or.reduceat(flags & (FIN | RST), starts) != 0
        st = self.state
        known = simple & (ti >= 0)
        k = np.flatnonzero(known)
        if len(k):
            t = ti[k]
            st["pk_a"][t] += pk_a[k]
            st["pk_b"][t] += count[k] - pk_a[k]
            st["by_a"][t] += by_a[k]
            st["by_b"][t] += by_all[k] - by_a[k]
            st["fl_a"][t] |= fl_a[k]
            st["fl_b"][t] |= fl_b[k]
            st["first"][t] = np.minimum(st["first"][t], tmin[k])
            st["last"][t] = np.maximum(st["last"][t], tmax[k])
            st["closed"][t] |= closed[k]
        new = np.flatnonzero(simple & (ti < 0))
        if len(new):
            self._grow(len(new))
            t = np.arange(self.n, self.n + len(new))
            self.n += len(new)
            ti[new] = t
            f0 = starts[new]
            first_flags = flags[f0]
            first_a = from_a[f0]
            is_tcp = g_key["proto"][new] == 6
            syn = is_tcp & ((first_flags & SYN) != 0)
            synack = syn & ((first_flags & ACK) != 0)
            self.hash[t] = g_hash[new]
            for f, v in g_key.items():
                self.key[f][t] = v[new]
            # a SYN-ACK makes the other side the initiator, unless both sides are one endpoint (nothing to swap)
            same = (g_key["a_hi"][new] == g_key["b_hi"][new]) & (g_key["a_lo"][new] == g_key["b_lo"][new])
            same &= g_key["a_port"][new] == g_key["b_port"][new]
            st["init_a"][t] = np.where(synack & ~same, ~first_a, first_a)
            st["how"][t] = np.where(synack, 2, np.where(syn, 1, 0))
            st["syn_seq"][t] = np.where(syn & ~synack, seq[f0], -1)
            st["pk_a"][t] = pk_a[new]
            st["pk_b"][t] = count[new] - pk_a[new]
            st["by_a"][t] = by_a[new]
            st["by_b"][t] = by_all[new] - by_a[new]
            st["fl_a"][t] = fl_a[new]
            st["fl_b"][t] = fl_b[new]
            st["first"][t] = tmin[new]
            st["last"][t] = tmax[new]
            st["closed"][t] = closed[new]
            st["ts0"][t] = ts[f0]
            st["syn_any"][t] = (is_tcp & ((first_flags & SYN) != 0) & ((first_flags & ACK) == 0)).astype(np.int64)
        rows_simple = simple[group_of] & (vlan >= 0)
        if rows_simple.any():
            codes = ti[group_of[rows_simple]] * 4096 + vlan[rows_simple]
            self.vlan_codes.append(np.unique(codes))
            if len(self.vlan_codes) > 8:  # keep one deduplicated array, not one per batch
                self.vlan_codes = [np.unique(np.concatenate(self.vlan_codes))]

    def _replay(
        self,
        t: int,
        h: int,
        key: dict[str, int],
        ts: I64,
        size: I64,
        flags: I64,
        seq: I64,
        from_a: npt.NDArray[np.bool_],
        vlan: I64,
    ) -> None:
        """Packet by packet, exactly FlowTable.add, for a group that may start new flows."""
        tcp = key["proto"] == 6
        limit = self.timeouts.tcp_ns if tcp else self.timeouts.other_ns
        cur: dict[str, int] | None = None
        vlans: set[int] = set()
        if t >= 0:
            cur = {f: int(self.state[f][t]) for f in STATE_FIELDS}
            vlans = self._take_vlans(t)
        for i in range(len(ts)):
            tsi, fl, a = int(ts[i]), int(flags[i]), bool(from_a[i])
            if cur is not None:
                new = False
                if (
                    tcp
                    and fl & SYN
                    and not fl & ACK
                    and (
                        cur["closed"]
                        or cur["syn_seq"] >= 0
                        and int(seq[i]) != cur["syn_seq"]
                        and ((cur["fl_b"] if cur["init_a"] else cur["fl_a"]) & ACK)
                    )
                ):
                    new = True
                if not new and limit is not None and tsi - cur["last"] > limit:
                    new = True
                if new:
                    self.done.append(_Done(tuple(key[f] for f in KEY_FIELDS), cur, vlans))
                    cur, vlans = None, set()
            if cur is None:
                cur = {
                    "init_a": int(a),
                    "first": tsi,
                    "last": tsi,
                    "pk_a": 0,
                    "pk_b": 0,
                    "by_a": 0,
                    "by_b": 0,
                    "fl_a": 0,
                    "fl_b": 0,
                    "how": 0,
                    "closed": 0,
                    "syn_seq": -1,
                    "ts0": tsi,
                    "syn_any": 0,
                }
                if tcp and fl & SYN:
                    if fl & ACK:
                        same = key["a_hi"] == key["b_hi"] and key["a_lo"] == key["b_lo"]
                        cur["init_a"] = int(a) if same and key["a_port"] == key["b_port"] else int(not a)
                        cur["how"] = 2
                    else:
                        cur["how"] = 1
                        cur["syn_seq"] = int(seq[i])
            cur["first"] = min(cur["first"], tsi)
            cur["last"] = max(cur["last"], tsi)
            side = "a" if a else "b"
            cur["pk_" + side] += 1
            cur["by_" + side] += int(size[i])
            cur["fl_" + side] |= fl
            if fl & (FIN | RST):
                cur["closed"] = 1
            if tcp and fl & SYN and not fl & ACK:
                cur["syn_any"] = 1
            if vlan[i] >= 0:
                vlans.add(int(vlan[i]))
        assert cur is not None
        if t < 0:
            self._grow(1)
            t = self.n
            self.n += 1
            self.hash[t] = h
            for f in KEY_FIELDS:
                self.key[f][t] = key[f]
        for f in STATE_FIELDS:
            self.state[f][t] = cur[f]
        if vlans:
            self.vlan_codes.append(np.array(sorted(t * 4096 + v for v in vlans), dtype=np.int64))

    def _take_vlans(self, t: int) -> set[int]:
        """Remove and return the VLANs recorded for table row ``t``."""
        if not self.vlan_codes:
            return set()
        codes = np.concatenate(self.vlan_codes)
        mine = (codes // 4096) == t
        self.vlan_codes = [codes[~mine]]
        return {int(c % 4096) for c in codes[mine]}

    # --- output ----------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.n + len(self.done)

    def records(self) -> FlowRecords:
        """Every flow as columns (finished flows first, in the order they finished, then live ones)."""
        nd, n = len(self.done), self.n
        key = {
            f: np.concatenate((np.array([d.key[k] for d in self.done], dtype=np.uint64), self.key[f][:n]))
            for k, f in enumerate(KEY_FIELDS)
        }
        state = {
            f: np.concatenate((np.array([d.state[f] for d in self.done], dtype=np.int64), self.state[f][:n]))
            for f in STATE_FIELDS
        }
        state["inst"] = np.arange(nd + n, dtype=np.int64)
        codes = [np.array([(i << 12) | v for i, d in enumerate(self.done) for v in d.vlans], dtype=np.int64)]
        if self.vlan_codes:  # live rows: row * 4096 + vlan
            live = np.unique(np.concatenate(self.vlan_codes))
            codes.append(((live // 4096 + nd) << 12) | (live % 4096))
        return FlowRecords(nd, key, state, np.unique(np.concatenate(codes)), self.timeouts)

    def flows(self, device_of: Callable[[bytes, int], DeviceId | None], capture: CaptureId | None = None) -> list[Flow]:
        """Frozen flows, as ``FlowTable.flows`` gives them."""
        return self.records().flows(device_of, self.capture if capture is None else capture)


class CFlowTable:
    """The same table as ``VectorFlowTable`` with the per-packet work in C (``_accum.FlowAcc``)."""

    def __init__(self, capture: CaptureId, timeouts: Timeouts | None = None) -> None:
        assert native.c_accum is not None
        self.capture = capture
        self.timeouts = timeouts or Timeouts()
        tcp, other = self.timeouts.tcp_ns, self.timeouts.other_ns
        self._acc = native.c_accum.FlowAcc(-1 if tcp is None else tcp, -1 if other is None else other)

    def add(self, cols: Columns, usable: npt.NDArray[np.bool_] | None = None) -> None:
        """Account every packet of the batch that belongs to a flow (``usable``: rows to consider, default all)."""
        rows = np.arange(len(cols), dtype=np.int64) if usable is None else np.flatnonzero(usable)
        b = cols.batch
        c = np.ascontiguousarray
        self._acc.add(
            rows, c(cols.ipver), c(cols.proto), c(cols.sport), c(cols.dport), c(cols.frag), c(cols.src_hi),
            c(cols.src_lo), c(cols.dst_hi), c(cols.dst_lo), c(b.ts), c(b.wirelen), c(cols.tflags), c(cols.tseq),
            c(cols.vlan),
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self._acc)

    def records(self) -> FlowRecords:
        """Every flow as columns (finished flows first, in the order they finished, then live ones)."""
        n_done, raw_keys, raw_states, raw_codes = self._acc.export()
        keys = np.frombuffer(raw_keys, dtype=np.uint64).reshape(-1, 5)
        states = np.frombuffer(raw_states, dtype=np.int64).reshape(-1, len(C_STATE_FIELDS))
        small = keys[:, 0]
        key = {
            "ver": small >> np.uint64(56),
            "proto": (small >> np.uint64(40)) & np.uint64(0xFFFF),
            "a_hi": keys[:, 1].copy(),
            "a_lo": keys[:, 2].copy(),
            "a_port": (small >> np.uint64(20)) & np.uint64(0xFFFFF),
            "b_hi": keys[:, 3].copy(),
            "b_lo": keys[:, 4].copy(),
            "b_port": small & np.uint64(0xFFFFF),
        }
        state = {f: states[:, i].copy() for i, f in enumerate(C_STATE_FIELDS)}
        codes = np.unique(np.frombuffer(raw_codes, dtype=np.uint64).astype(np.int64))
        return FlowRecords(n_done, key, state, codes, self.timeouts)

    def flows(self, device_of: Callable[[bytes, int], DeviceId | None], capture: CaptureId | None = None) -> list[Flow]:
        """Frozen flows, as ``FlowTable.flows`` gives them."""
        return self.records().flows(device_of, self.capture if capture is None else capture)


def new_flow_table(capture: CaptureId, timeouts: Timeouts | None = None) -> VectorFlowTable | CFlowTable:
    """The fastest flow table available (C when the extension is built)."""
    if native.c_accum is not None:
        return CFlowTable(capture, timeouts)
    return VectorFlowTable(capture, timeouts)


@dataclass(slots=True)
class FlowRecords:
    """Every flow of one capture (or of consecutive parts of it) as columns.

    Rows ``[0, n_done)`` are finished flows in the order they finished, the rest the live ones. ``key`` holds
    ``KEY_FIELDS`` (uint64), ``state`` ``STATE_FIELDS`` plus ``inst`` (int64), a number unique to each flow that
    ``vlan_codes`` (``inst << 12 | vlan``, sorted, unique) refer to.
    """

    n_done: int
    key: dict[str, U64]
    state: dict[str, I64]
    vlan_codes: I64
    timeouts: Timeouts

    def __len__(self) -> int:
        return len(self.state["inst"])

    def merge(self, later: FlowRecords) -> FlowRecords:
        """These flows continued by the flows of the packets that followed (the next part of the same file).

        Exact where the boundary provably does not matter. For a key not live here, the later part's flows
        are taken as they are. For a key live here, the later part's first flow either has no pure SYN and
        began within the idle timeout (it is the same flow: added in), or began with a pure SYN that starts a
        new connection by ``FlowTable``'s rules (the live flow ends; the later flows are taken as they are).
        Anything else raises ``NotMergeable`` and the caller analyses the file serially.
        """
        n1, n2, d1, d2 = len(self), len(later), self.n_done, later.n_done
        st, s2 = self.state, later.state
        keys1 = list(zip(*(self.key[f].tolist() for f in KEY_FIELDS), strict=True)) if n1 else []
        keys2 = list(zip(*(later.key[f].tolist() for f in KEY_FIELDS), strict=True)) if n2 else []
        live1 = {keys1[r]: r for r in range(d1, n1)}
        first_of: dict[tuple[int, ...], int] = {}  # the later part's first flow of each key (done ones come first)
        for r in range(n2):
            first_of.setdefault(keys2[r], r)
        additive: list[tuple[int, int]] = []  # (row here, later live row)
        restart: list[tuple[int, int]] = []
        for r2 in range(d2, n2):
            key = keys2[r2]
            r1 = live1.get(key)
            if r1 is None:
                continue
            f2 = first_of[key]
            limit = self.timeouts.tcp_ns if key[1] == 6 else self.timeouts.other_ns
            idle = limit is not None and int(s2["ts0"][f2]) - int(st["last"][r1]) > limit
            if not s2["syn_any"][f2] and not idle and f2 == r2:
                additive.append((r1, r2))
                continue
            rev_flags = int(st["fl_b"][r1] if st["init_a"][r1] else st["fl_a"][r1])
            syn_seq = int(st["syn_seq"][r1])
            new_connection = int(s2["how"][f2]) == 1 and (  # its first packet is a pure SYN
                bool(st["closed"][r1]) or (syn_seq >= 0 and int(s2["syn_seq"][f2]) != syn_seq and rev_flags & ACK)
            )
            if new_connection or idle:  # by FlowTable's rules the later part's first packet starts a new flow
                restart.append((r1, r2))
                continue
            raise NotMergeable("a flow may continue across the part boundary in a way only a replay can tell")
        offset = int(st["inst"].max()) + 1 if n1 else 0
        inst2 = s2["inst"] + offset
        state1 = {f: v.copy() for f, v in st.items()}
        remap = inst2.copy()  # later row -> the inst its flow ends up with
        if additive:
            k1 = np.array([a for a, _ in additive], dtype=np.int64)
            k2 = np.array([b for _, b in additive], dtype=np.int64)
            for f in ("pk_a", "pk_b", "by_a", "by_b"):
                state1[f][k1] += s2[f][k2]
            for f in ("fl_a", "fl_b", "closed"):
                state1[f][k1] |= s2[f][k2]
            state1["first"][k1] = np.minimum(state1["first"][k1], s2["first"][k2])
            state1["last"][k1] = np.maximum(state1["last"][k1], s2["last"][k2])
            remap[k2] = st["inst"][k1]
        ended = np.array([a for a, _ in restart], dtype=np.int64)
        if restart:  # the live flow here ends; the later part's live flow of the key takes its place
            k2 = np.array([b for _, b in restart], dtype=np.int64)
            for f in STATE_FIELDS:
                state1[f][ended] = s2[f][k2]
            state1["inst"][ended] = inst2[k2]
        taken = np.zeros(n2, dtype=bool)
        taken[np.array([b for _, b in additive] + [b for _, b in restart], dtype=np.int64)] = True
        fresh = np.flatnonzero(~taken[d2:]) + d2
        parts = (
            (self.key, st, np.arange(d1)),  # done here
            (self.key, st, ended),  # ended at the boundary, with their own state and inst
            (later.key, {**s2, "inst": inst2}, np.arange(d2)),  # done in the later part
            (self.key, state1, np.arange(d1, n1)),  # live here, continued or replaced
            (later.key, {**s2, "inst": inst2}, fresh),  # live, new in the later part
        )
        merged_key = {f: np.concatenate([p[0][f][p[2]] for p in parts]) for f in KEY_FIELDS}
        merged_state = {f: np.concatenate([p[1][f][p[2]] for p in parts]) for f in (*STATE_FIELDS, "inst")}
        codes2 = later.vlan_codes
        by_inst = np.argsort(s2["inst"])
        rows2 = by_inst[np.searchsorted(s2["inst"][by_inst], codes2 >> 12)]
        codes = np.concatenate((self.vlan_codes, (remap[rows2] << 12) | (codes2 & 4095)))
        return FlowRecords(d1 + len(ended) + d2, merged_key, merged_state, np.unique(codes), self.timeouts)

    def columns(self, resolution: Resolution, capture: CaptureId) -> FlowColumns:
        """The flows as ``FlowColumns`` (in table order: sort them with ``FlowColumns.sorted``), each endpoint
        resolved to its device at the flow's first packet (``Resolution.device_of``, over columns)."""
        n = len(self)
        cols: dict[str, npt.NDArray[Any]] = {**self.key, **self.state}
        init_a = cols["init_a"].astype(bool)

        def oriented(a: str, b: str) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
            return np.where(init_a, cols[a], cols[b]), np.where(init_a, cols[b], cols[a])

        s_hi, d_hi = oriented("a_hi", "b_hi")
        s_lo, d_lo = oriented("a_lo", "b_lo")
        s_port, d_port = oriented("a_port", "b_port")
        ver = cols["ver"]
        e_ver, e_hi, e_lo = np.concatenate((ver, ver)), np.concatenate((s_hi, d_hi)), np.concatenate((s_lo, d_lo))
        rep, inverse = _unique_rows(e_ver, e_hi, e_lo)
        texts: list[str] = [capture, *INITIATORS]
        device_text: dict[str, int] = {}
        ip_index = np.empty(len(rep), dtype=np.int64)
        dev_index = np.full(len(rep), -1, dtype=np.int64)
        raws: list[bytes] = []
        timed = np.zeros(len(rep), dtype=bool)
        for u, (v, hi, lo) in enumerate(zip(e_ver[rep].tolist(), e_hi[rep].tolist(), e_lo[rep].tolist(), strict=True)):
            raw = _ip_bytes(v, hi, lo)
            raws.append(raw)
            ip_index[u] = len(texts)
            texts.append(ip_str(raw))
            if raw in resolution.shared:
                timed[u] = True
            elif (dev := resolution.device_of(raw)) is not None:
                dev_index[u] = device_text.setdefault(dev, len(device_text))
        end_dev = dev_index[inverse]
        if timed.any():  # addresses several devices used: the one using it at the flow's first packet
            ts = np.concatenate((cols["first"], cols["first"]))
            rows = np.flatnonzero(timed[inverse])
            rows = rows[np.argsort(inverse[rows], kind="stable")]
            bounds = np.flatnonzero(np.diff(inverse[rows])) + 1
            for group in np.split(rows, bounds):
                owners = resolution.owners[raws[int(inverse[group[0]])]]
                chosen = _owner_at(owners, ts[group])
                ids = np.array([device_text.setdefault(dev, len(device_text)) for dev, _, _ in owners], dtype=np.int64)
                end_dev[group] = ids[chosen]
        base = len(texts)
        texts += list(device_text)
        end_dev = np.where(end_dev >= 0, end_dev + base, -1)
        src_u, dst_u = inverse[:n], inverse[n:]
        src_dev, dst_dev = end_dev[:n], end_dev[n:]
        pk_src, pk_dst = oriented("pk_a", "pk_b")
        by_src, by_dst = oriented("by_a", "by_b")
        fl_src, fl_dst = oriented("fl_a", "fl_b")
        # VLANs: codes are inst << 12 | vlan, sorted; a stable sort by row keeps each flow's VLANs in order
        codes = self.vlan_codes
        by_inst = np.argsort(cols["inst"])
        code_rows = by_inst[np.searchsorted(cols["inst"][by_inst], codes >> 12)] if len(codes) else codes
        order = np.argsort(code_rows, kind="stable")
        vlan_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(code_rows, minlength=n)[:n] if len(codes) else np.zeros(n, np.int64), out=vlan_ptr[1:])
        return FlowColumns(
            texts,
            {
                "capture": np.zeros(n, dtype=np.int64),
                "proto": cols["proto"].astype(np.int64),
                "src_ip": ip_index[src_u],
                "src_port": s_port.astype(np.int64) - 1,
                "dst_ip": ip_index[dst_u],
                "dst_port": d_port.astype(np.int64) - 1,
                "first_ns": cols["first"],
                "last_ns": cols["last"],
                "packets_src": pk_src,
                "packets_dst": pk_dst,
                "bytes_src": by_src,
                "bytes_dst": by_dst,
                "tcp_flags_src": fl_src,
                "tcp_flags_dst": fl_dst,
                "initiator": cols["how"] + 1,
                "src_device": src_dev,
                "dst_device": dst_dev,
            },  # fmt: skip
            vlan_ptr,
            (codes & 4095)[order],
        )

    def flows(self, device_of: Callable[[bytes, int], DeviceId | None], capture: CaptureId) -> list[Flow]:
        """Frozen flows, each endpoint resolved by ``device_of(ip, first_ns)`` (as ``FlowTable.flows``).

        Built a slice at a time in the order of ``FlowTable.states()`` (first packet, protocol, endpoints;
        finished flows before live ones on ties), so memory peaks at the flows themselves.
        """
        cols: dict[str, npt.NDArray[Any]] = {**self.key, **self.state}
        vlans_of: dict[int, tuple[int, ...]] = {}
        if len(self.vlan_codes):
            row_of_inst = dict(zip(cols["inst"].tolist(), range(len(self)), strict=True))
            lists: dict[int, list[int]] = {}
            for c in self.vlan_codes.tolist():  # sorted: the VLANs of a flow come out in order
                lists.setdefault(row_of_inst[c >> 12], []).append(c & 4095)
            vlans_of = {row: tuple(v) for row, v in lists.items()}
        init_a = cols["init_a"].astype(bool)
        s_hi = np.where(init_a, cols["a_hi"], cols["b_hi"])
        s_lo = np.where(init_a, cols["a_lo"], cols["b_lo"])
        s_port = np.where(init_a, cols["a_port"], cols["b_port"])
        d_hi = np.where(init_a, cols["b_hi"], cols["a_hi"])
        d_lo = np.where(init_a, cols["b_lo"], cols["a_lo"])
        d_port = np.where(init_a, cols["b_port"], cols["a_port"])
        # rows are done flows then live ones; lexsort is stable, so ties keep that order
        order = np.lexsort((d_port, d_lo, d_hi, s_port, s_lo, s_hi, cols["proto"], cols["first"]))
        ends: dict[tuple[int, int, int], tuple[bytes, str]] = {}

        def end(ver: int, hi: int, lo: int) -> tuple[bytes, str]:
            key = (ver, hi, lo)
            got = ends.get(key)
            if got is None:
                raw = _ip_bytes(ver, hi, lo)
                got = ends[key] = (raw, ip_str(raw))
            return got

        out: list[Flow] = []
        pk_src = np.where(init_a, cols["pk_a"], cols["pk_b"])
        pk_dst = np.where(init_a, cols["pk_b"], cols["pk_a"])
        by_src = np.where(init_a, cols["by_a"], cols["by_b"])
        by_dst = np.where(init_a, cols["by_b"], cols["by_a"])
        fl_src = np.where(init_a, cols["fl_a"], cols["fl_b"])
        fl_dst = np.where(init_a, cols["fl_b"], cols["fl_a"])
        fields = (cols["ver"], cols["proto"], s_hi, s_lo, s_port, d_hi, d_lo, d_port, cols["first"], cols["last"],
                  pk_src, pk_dst, by_src, by_dst, fl_src, fl_dst, cols["how"])  # fmt: skip
        for start in range(0, len(order), FLOW_SLICE):
            idx = order[start : start + FLOW_SLICE]
            for row, values in zip(idx.tolist(), zip(*(f[idx].tolist() for f in fields), strict=True), strict=True):
                ver, proto, shi, slo, sp, dhi, dlo, dp, first, last, pks, pkd, bys, byd, fls, fld, how = values
                s_raw, s_text = end(ver, shi, slo)
                d_raw, d_text = end(ver, dhi, dlo)
                out.append(
                    Flow(
                        capture=capture, proto=proto, src_ip=s_text, src_port=sp - 1 if sp else None,
                        dst_ip=d_text, dst_port=dp - 1 if dp else None, first_ns=first, last_ns=last,
                        packets_src=pks, packets_dst=pkd, bytes_src=bys, bytes_dst=byd, tcp_flags_src=fls,
                        tcp_flags_dst=fld, initiator=INITIATORS[how], vlans=vlans_of.get(row, ()),
                        src_device=device_of(s_raw, first), dst_device=device_of(d_raw, first),
                    )
                )  # fmt: skip
        return out


def _unique_rows(ver: U64, hi: U64, lo: U64) -> tuple[I64, I64]:
    """Distinct (ver, hi, lo) addresses: a representative row of each, and each row's address number."""
    if len(ver) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    h = _mix(lo * M1 ^ _mix(hi + M2) ^ (ver << np.uint64(56)))
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.int64)
    rep = first.astype(np.int64)
    if (ver[rep][inverse] != ver).any() or (hi[rep][inverse] != hi).any() or (lo[rep][inverse] != lo).any():
        stacked = np.stack((ver, hi, lo), axis=1)  # a 64-bit collision: the exact (slower) way
        _, first, inverse = np.unique(stacked, axis=0, return_index=True, return_inverse=True)
        return first.astype(np.int64), inverse.reshape(-1).astype(np.int64)
    return rep, inverse


def _owner_at(owners: tuple[tuple[DeviceId, int, int], ...], ts: I64) -> I64:
    """``Resolution.device_of`` for one address over many times: the index into ``owners`` of the first owner
    using it at each time, else of the nearest one in time."""
    first = np.array([o[1] for o in owners], dtype=np.int64)
    last = np.array([o[2] for o in owners], dtype=np.int64)
    t = ts[:, None]
    inside = (first <= t) & (t <= last)
    near = np.argmin(np.minimum(np.abs(t - first), np.abs(t - last)), axis=1)
    return cast(I64, np.where(inside.any(axis=1), np.argmax(inside, axis=1), near))


def _ip_bytes(ver: int, hi: int, lo: int) -> bytes:
    return lo.to_bytes(4, "big") if ver == 4 else ((hi << 64) | lo).to_bytes(16, "big")
