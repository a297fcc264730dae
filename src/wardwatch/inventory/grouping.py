"""Group-by helpers for column batches: exact grouping on several uint64 key columns, first/last sightings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

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


def group_ids(keys: list[U64]) -> tuple[I64, int]:
    """The group number of each row (groups numbered in the order ``group`` finds them) and how many there are."""
    order, starts = group(keys)
    n = len(order)
    ids = np.empty(n, dtype=np.int64)
    ids[order] = np.repeat(np.arange(len(starts), dtype=np.int64), np.diff(np.append(starts, n)))
    return ids, len(starts)


@dataclass(slots=True)
class Sightings:
    """Per group: how often, first time (and the number of the first packet at that time), last time."""

    count: I64
    first: I64
    first_number: I64
    last: I64


def sightings(order: I64, starts: I64, ts: I64, number: I64, last: I64 | None = None) -> Sightings:
    """First/last sightings per group. The first packet is the lowest-numbered one at the minimum time: within a
    capture packets are processed in number order, so that is what repeated ``Span.see`` calls keep.
    ``last`` (default ``ts``) gives the times whose maximum is the last sighting."""
    n = len(order)
    t = ts[order]
    tmin = np.minimum.reduceat(t, starts)
    tmax = np.maximum.reduceat(t if last is None else last[order], starts)
    group_of = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n)))
    num = number[order]
    big = np.iinfo(np.int64).max
    first_number = np.minimum.reduceat(np.where(t == tmin[group_of], num, big), starts)
    return Sightings(
        count=np.diff(np.append(starts, n)).astype(np.int64),
        first=tmin,
        first_number=first_number,
        last=tmax,
    )


class Aggregates:
    """Per-key sightings gathered batch by batch, merged into the caller's dictionaries later in one go.

    Rows arrive already reduced per batch (``add``: key columns, count, first time, number of the first packet,
    last time, an extra sum); when many are pending they are compacted with numpy, and ``drain`` yields one
    result per key. Within a capture, results do not depend on the order rows arrive in.
    """

    def __init__(self, compact_rows: int = 100_000) -> None:
        self.parts: list[tuple[list[U64], I64, I64, I64, I64, I64]] = []
        self.rows = 0
        self.compact_rows = compact_rows

    def add(self, keys: list[U64], count: I64, first: I64, number: I64, last: I64, extra: I64) -> None:
        """Add reduced rows."""
        if len(count) == 0:
            return
        self.parts.append((keys, count, first, number, last, extra))
        self.rows += len(count)
        if self.rows > self.compact_rows:
            self._compact()

    def _reduce(self) -> tuple[list[U64], I64, I64, I64, I64, I64]:
        parts = self.parts
        ncols = len(parts[0][0])
        keys = [np.concatenate([p[0][c] for p in parts]) for c in range(ncols)]
        count, first, number, last, extra = (np.concatenate([p[j] for p in parts]) for j in range(1, 6))
        order, starts = group(keys)
        sig = sightings(order, starts, first, number, last)
        firsts = order[starts]
        return (
            [k[firsts] for k in keys],
            np.add.reduceat(count[order], starts),
            sig.first,
            sig.first_number,
            sig.last,
            np.add.reduceat(extra[order], starts),
        )

    def _compact(self) -> None:
        reduced = self._reduce()
        self.parts = [reduced]
        self.rows = len(reduced[1])

    def drain(self) -> Iterator[tuple[list[int], int, int, int, int, int]]:
        """Yield ``(key columns, count, first, first_number, last, extra)`` per key; forget the pending rows."""
        if not self.parts:
            return
        keys, count, first, number, last, extra = self._reduce()
        self.parts, self.rows = [], 0
        key_cols = [k.tolist() for k in keys]
        rows = zip(count.tolist(), first.tolist(), number.tolist(), last.tolist(), extra.tolist(), strict=True)
        for g, (c, f, n, la, e) in enumerate(rows):
            yield [col[g] for col in key_cols], c, f, n, la, e
