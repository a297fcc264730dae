"""Group-by helpers for column batches: exact grouping on several uint64 key columns, first/last sightings."""

from __future__ import annotations

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
