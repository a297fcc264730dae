"""Group-by helpers for column batches: exact grouping on several uint64 key columns, first/last sightings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

_M = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def _mix(h: U64) -> U64:
    h = h ^ (h >> np.uint64(30))
    h = h * _M[1]
    h = h ^ (h >> np.uint64(27))
    h = h * _M[2]
    return h ^ (h >> np.uint64(31))


def group(keys: list[U64]) -> tuple[I64, I64]:
    """Stable grouping of rows by the tuple of key columns.

    Returns ``(order, starts)``: ``order`` lists the rows group by group, in their original order inside each
    group; ``starts`` the position in ``order`` where each group begins. One key column is sorted directly;
    several are hashed to 64 bits and checked (a collision falls back to an exact lexicographic sort).
    """
    n = len(keys[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if len(keys) == 1:
        h = keys[0]
    else:
        h = np.zeros(n, dtype=np.uint64)
        for i, k in enumerate(keys):
            h = _mix(h ^ (k + np.uint64((0x9E3779B97F4A7C15 * (i + 1)) % 2**64)))
    order = np.argsort(h, kind="stable")
    hs = h[order]
    starts = np.flatnonzero(np.concatenate(([True], hs[1:] != hs[:-1])))
    if len(keys) > 1:
        group_of = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n)))
        first = order[starts][group_of]
        if any(np.any(k[order] != k[first]) for k in keys):
            order = np.lexsort(tuple(reversed(keys)))  # exact; lexsort is stable
            sk = [k[order] for k in keys]
            change = np.zeros(n, dtype=bool)
            change[0] = True
            for k in sk:
                change[1:] |= k[1:] != k[:-1]
            starts = np.flatnonzero(change)
    return order.astype(np.int64), starts.astype(np.int64)


@dataclass(slots=True)
class Sightings:
    """Per group: how often, first time (and the number of the first packet at that time), last time."""

    count: I64
    first: I64
    first_number: I64
    last: I64


def sightings(order: I64, starts: I64, ts: I64, number: I64) -> Sightings:
    """First/last sightings per group; the first packet is the earliest in order among those at the minimum time
    (what repeated ``Span.see`` calls keep)."""
    n = len(order)
    t = ts[order]
    tmin = np.minimum.reduceat(t, starts)
    tmax = np.maximum.reduceat(t, starts)
    group_of = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n)))
    at_min = t == tmin[group_of]
    pos = np.where(at_min, np.arange(n), n)
    first_pos = np.minimum.reduceat(pos, starts)
    return Sightings(
        count=np.diff(np.append(starts, n)).astype(np.int64),
        first=tmin,
        first_number=number[order][first_pos],
        last=tmax,
    )


class Aggregates:
    """Per-key sightings of masked rows, aggregated batch by batch and merged later in one go.

    ``add`` groups one batch's rows by the key columns (keeping, per key, the count, the first time with the
    number of the earliest packet at that time, the last time and the sum of an optional extra column);
    ``drain`` groups all pending aggregates again the same way and yields one result per key, in key order of
    first appearance-independent but deterministic order.
    """

    def __init__(self) -> None:
        self.parts: list[tuple[list[U64], I64, I64, I64, I64, I64]] = []
        self.rows = 0

    def add(self, keys: list[U64], mask: npt.NDArray[np.bool_], ts: I64, number: I64, extra: I64 | None = None) -> None:
        """Aggregate the rows selected by ``mask``."""
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            return
        order, starts = group([k[idx] for k in keys])
        rows = idx[order]
        sig = sightings(np.arange(len(rows)), starts, ts[rows], number[rows])
        firsts = rows[starts]
        ex = np.add.reduceat(extra[rows], starts) if extra is not None else np.zeros(len(starts), dtype=np.int64)
        self.parts.append(([k[firsts] for k in keys], sig.count, sig.first, sig.first_number, sig.last, ex))
        self.rows += len(starts)

    def drain(self, key_of: Callable[[list[int]], object]) -> Iterator[tuple[Any, int, int, int, int, int]]:
        """Yield ``(key, count, first, first_number, last, extra)`` per key and forget the pending parts."""
        if not self.parts:
            return
        parts, self.parts, self.rows = self.parts, [], 0
        ncols = len(parts[0][0])
        keys = [np.concatenate([p[0][c] for p in parts]) for c in range(ncols)]
        count = np.concatenate([p[1] for p in parts])
        first = np.concatenate([p[2] for p in parts])
        number = np.concatenate([p[3] for p in parts])
        last = np.concatenate([p[4] for p in parts])
        extra = np.concatenate([p[5] for p in parts])
        order, starts = group(keys)
        # earlier parts come first within a group (stable): the earliest packet at the minimum time wins
        sig = sightings(order, starts, first, number)
        totals = np.add.reduceat(count[order], starts).tolist()
        lasts = np.maximum.reduceat(last[order], starts).tolist()
        extras = np.add.reduceat(extra[order], starts).tolist()
        firsts = order[starts]
        key_cols = [k[firsts].tolist() for k in keys]
        f, n = sig.first.tolist(), sig.first_number.tolist()
        for g in range(len(starts)):
            yield key_of([col[g] for col in key_cols]), totals[g], f[g], n[g], lasts[g], extras[g]
