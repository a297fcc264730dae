"""TCP stream heads: the first packets carrying payload in each direction of every TCP connection.

Protocols recognised by what they carry rather than by their port (HL7 v2 over MLLP, DICOM, TLS, HTTP, SMB
run on any port in a hospital) are identified from the first few payload packets of each connection. A
dissector asks for them with ``Selector.stream_head``; ``StreamHeads`` numbers them as packets arrive: the
n-th packet with a TCP payload in one direction of a connection gets index n (from 0), up to ``limit``; a
pure SYN (SYN without ACK) starts the connection again, both directions from 0. Every other packet — not TCP,
no payload, a later IP fragment, or past the limit — gets -1.

The numbering is per capture file (flows do not cross files either). ``StreamHeads`` is the reference: the
fast path numbers whole batches at once (``_accum.StreamHeads`` in C, or ``index_columns`` over the same
state) with the same rules, and the tests check that they agree packet for packet.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from wardwatch.capture.vector import Columns
from wardwatch.inventory import native
from wardwatch.inventory.flows import ACK, SYN
from wardwatch.model.packet import Fragment, IpProto, Packet

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]

Key = tuple[object, ...]


class StreamHeads:
    """Numbers the first ``limit`` payload packets of each direction of each TCP connection of one capture."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a stream head of at least one packet")
        self.limit = limit
        self._seen: dict[Key, int] = {}
        """Payload packets seen so far per direction (``limit`` once saturated: the entry must stay)."""
        self._c: Any = None
        """The C tables (``index_columns`` with the accumulators built); an instance numbers either packets or
        batches, never both."""

    def see(self, forward: Key, reverse: Key, flags: int, payload: bool) -> int:
        """One TCP packet from ``forward``'s source to its destination (``reverse`` is the other direction)."""
        seen = self._seen
        if flags & SYN and not flags & ACK:  # a new connection (or its retransmitted SYN): both directions anew
            seen.pop(forward, None)
            seen.pop(reverse, None)
        if not payload:
            return -1
        n = seen.get(forward, 0)
        if n >= self.limit:
            return -1
        seen[forward] = n + 1
        return n

    def index(self, packet: Packet) -> int:
        """The stream-head index of ``packet`` (-1 when it is none)."""
        if (
            packet.proto != IpProto.TCP
            or packet.src_port is None
            or packet.dst_port is None
            or packet.src_ip is None
            or packet.dst_ip is None
            or packet.fragment is Fragment.LATER
        ):
            return -1
        a = (packet.src_ip, packet.src_port)
        b = (packet.dst_ip, packet.dst_port)
        return self.see((*a, *b), (*b, *a), packet.tcp_flags, bool(packet.payload))

    def index_columns(self, cols: Columns, rows: I64) -> I32:
        """The stream-head index of each row of a decoded batch (``rows``: the usable ones; the others get -1),
        as ``index`` would give for each packet in order; in C when the accumulators are built."""
        out = np.full(len(cols.batch), -1, dtype=np.int32)
        tcp = rows[(cols.proto[rows] == IpProto.TCP) & (cols.sport[rows] >= 0) & (cols.frag[rows] != 2)]
        if len(tcp) == 0:
            return out
        length = payload_lengths(cols, tcp)
        if self._c is None and not self._seen and native.c_accum is not None:
            self._c = native.c_accum.StreamHeads(self.limit)
        if self._c is not None:
            c = np.ascontiguousarray
            self._c.index(
                c(tcp, dtype=np.int64), c(length, dtype=np.int64), c(cols.ipver), c(cols.src_hi), c(cols.src_lo),
                c(cols.dst_hi), c(cols.dst_lo), c(cols.sport), c(cols.dport), c(cols.tflags), out,
            )  # fmt: skip
            return out
        # without the C accumulators: the reference rules over plain integers, the rows that matter only
        syn = (cols.tflags[tcp] & SYN) != 0
        relevant = np.flatnonzero((length > 0) | syn)
        if len(relevant) == 0:
            return out
        picked = tcp[relevant]
        fields = (cols.ipver, cols.src_hi, cols.src_lo, cols.sport, cols.dst_hi, cols.dst_lo, cols.dport)
        ver, shi, slo, sp, dhi, dlo, dp = (f[picked].tolist() for f in fields)
        flags, has = cols.tflags[picked].tolist(), (length[relevant] > 0).tolist()
        see = self.see
        for k, row in enumerate(picked.tolist()):
            src, dst = (ver[k], shi[k], slo[k], sp[k]), (ver[k], dhi[k], dlo[k], dp[k])
            out[row] = see((*src, *dst), (*dst, *src), flags[k], has[k])
        return out


def payload_lengths(cols: Columns, rows: I64) -> I64:
    """Length of the transport payload of each of ``rows`` (from the decoders' payload bounds; rows the
    reference decoder handled, from their Packet)."""
    out = np.zeros(len(rows), dtype=np.int64)
    slow = cols.slow[rows]
    if cols.pay_start is not None and cols.pay_end is not None:
        fast = rows[~slow]
        out[~slow] = cols.pay_end[fast].astype(np.int64) - cols.pay_start[fast]
    else:
        slow = np.ones(len(rows), dtype=bool)
    for k in np.flatnonzero(slow).tolist():
        out[k] = len(cols.packet(int(rows[k])).payload)
    return out
