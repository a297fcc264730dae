"""pcapng files: sections, interfaces with their own link type and timestamp resolution, packet blocks.

Format: draft-ietf-opsawg-pcapng (section 4 general block structure; 4.1 SHB, 4.2 IDB with options
``if_tsresol`` (9) and ``if_tsoffset`` (14); 4.3 EPB; 4.4 SPB; appendix A obsolete Packet
Block). Blocks of other types (name resolution, statistics, decryption secrets, custom) are skipped.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from wardwatch.capture.interface import TS_INVALID, TS_MAX, Record
from wardwatch.capture.stream import ByteStream, StreamReader
from wardwatch.model.packet import RAW_ALIASES, LinkType

SHB = 0x0A0D0D0A
IDB = 0x00000001
PB_OBSOLETE = 0x00000002
SPB = 0x00000003
EPB = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
#: Largest block accepted (Wireshark's limit for pcapng blocks).
MAX_BLOCK = 16 * 1024 * 1024

OPT_END = 0
OPT_IF_TSRESOL = 9
OPT_IF_TSOFFSET = 14


@dataclass(slots=True)
class Interface:
    """What an Interface Description Block says about the packets captured on it."""

    linktype: int
    snaplen: int
    units_per_second: int = 1_000_000
    offset_seconds: int = 0

    def ts_ns(self, ticks: int) -> int:
        """Convert a timestamp in this interface's units to nanoseconds since the epoch (``TS_INVALID`` when the
        result does not fit the int64 nanosecond range: a corrupt block)."""
        ups = self.units_per_second
        ns = ticks * 1000 if ups == 1_000_000 else ticks * 1_000_000_000 // ups
        ns += self.offset_seconds * 1_000_000_000
        return ns if TS_INVALID < ns <= TS_MAX else TS_INVALID


def parse_options(body: bytes, start: int, order: str) -> Iterator[tuple[int, bytes]]:
    """Yield (code, value) of the options in ``body[start:]``; stops at opt_endofopt or malformed data."""
    pos = start
    unpack = struct.Struct(order + "HH").unpack_from
    while pos + 4 <= len(body):
        code, length = unpack(body, pos)
        pos += 4
        if code == OPT_END or pos + length > len(body):
            return
        yield code, body[pos : pos + length]
        pos += (length + 3) & ~3


def interface_from_idb(body: bytes, order: str) -> Interface:
    """Decode an IDB body (after the 8-byte block header, before the trailing length)."""
    linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", body, 0)
    if linktype in RAW_ALIASES:
        linktype = LinkType.RAW
    iface = Interface(linktype=linktype, snaplen=snaplen)
    for code, value in parse_options(body, 8, order):
        if code == OPT_IF_TSRESOL and len(value) >= 1:
            resol = value[0]
            iface.units_per_second = 2 ** (resol & 0x7F) if resol & 0x80 else 10 ** (resol & 0x7F)
        elif code == OPT_IF_TSOFFSET and len(value) >= 8:
            (iface.offset_seconds,) = struct.unpack_from(order + "q", value, 0)
    return iface


class PcapngReader(StreamReader):
    """Streaming reader of one pcapng file (any number of sections and interfaces)."""

    format_name = "pcapng"

    def __init__(self, stream: ByteStream, size: int, compressed: bool) -> None:
        super().__init__(stream, size, compressed)
        self.interfaces: list[Interface] = []
        """Interfaces of all sections so far, in order (the global interface number is the index)."""

    def __iter__(self) -> Iterator[Record]:
        """Records in file order; the file is closed when iteration ends (normally or by an error)."""
        try:
            yield from self._records()
        finally:
            self.close()

    def _records(self) -> Iterator[Record]:
        stream = self._stream
        order = "<"
        section_base = 0  # global index of interface 0 of the current section
        number = 0
        seen_shb = False
        last_ts = 0
        while True:
            offset = stream.offset
            head = stream.read(8)
            if not head:
                return
            if len(head) < 8:
                raise stream.fail(offset, f"cut short in a block header ({len(head)} of 8 bytes)")
            if head[:4] == b"\x0a\x0d\x0d\x0a":
                bom = stream.peek(4)
                if len(bom) < 4:
                    raise stream.fail(offset, "cut short in a section header block")
                if struct.unpack("<I", bom)[0] == BYTE_ORDER_MAGIC:
                    order = "<"
                elif struct.unpack(">I", bom)[0] == BYTE_ORDER_MAGIC:
                    order = ">"
                else:
                    raise stream.fail(offset + 8, f"section header has a bad byte-order magic ({bom.hex()})")
                seen_shb = True
                section_base = len(self.interfaces)
            elif not seen_shb:
                raise stream.fail(offset, f"not a pcapng file (first block type {head[:4].hex()})")
            btype, blen = struct.unpack(order + "II", head)
            if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                raise stream.fail(offset, f"block of type 0x{btype:08x} has a bad length {blen}")
            rest = stream.read(blen - 8)
            if len(rest) < blen - 8:
                raise stream.fail(
                    offset, f"cut short in a block of type 0x{btype:08x} ({len(rest) + 8} of {blen} bytes)"
                )
            (trailer,) = struct.unpack_from(order + "I", rest, len(rest) - 4)
            if trailer != blen:
                raise stream.fail(offset, f"block of type 0x{btype:08x}: trailing length {trailer} != {blen}")
            body = rest[:-4]
            if btype == SHB:
                major = struct.unpack_from(order + "H", body, 4)[0] if len(body) >= 6 else 0
                if major != 1:
                    raise stream.fail(offset, f"unsupported pcapng version {major}")
            elif btype == IDB:
                if len(body) < 8:
                    raise stream.fail(offset, "interface description block too short")
                iface = interface_from_idb(body, order)
                self.interfaces.append(iface)
                self._linktypes[iface.linktype] = None
            elif btype in (EPB, PB_OBSOLETE):
                if len(body) < 20:
                    raise stream.fail(offset, "packet block too short")
                if btype == EPB:
                    if_id, ts_hi, ts_lo, caplen, wirelen = struct.unpack_from(order + "IIIII", body, 0)
                else:
                    if_id, _drops, ts_hi, ts_lo, caplen, wirelen = struct.unpack_from(order + "HHIIII", body, 0)
                if caplen > len(body) - 20:
                    raise stream.fail(offset, f"packet block claims {caplen} bytes but holds {len(body) - 20}")
                index = section_base + if_id
                if index >= len(self.interfaces):
                    raise stream.fail(offset, f"packet block names undeclared interface {if_id}")
                iface = self.interfaces[index]
                number += 1
                last_ts = iface.ts_ns((ts_hi << 32) | ts_lo)
                yield Record(number, last_ts, index, iface.linktype, caplen, wirelen, body[20 : 20 + caplen], offset)
            elif btype == SPB:
                if len(body) < 4:
                    raise stream.fail(offset, "simple packet block too short")
                if section_base >= len(self.interfaces):
                    raise stream.fail(offset, "simple packet block before any interface description")
                iface = self.interfaces[section_base]
                (wirelen,) = struct.unpack_from(order + "I", body, 0)
                caplen = min(wirelen, len(body) - 4)
                if iface.snaplen:
                    caplen = min(caplen, iface.snaplen)
                number += 1
                # SPBs carry no timestamp: use the previous packet's time (or 0)
                yield Record(
                    number,
                    last_ts,
                    section_base,
                    iface.linktype,
                    caplen,
                    wirelen,
                    body[4 : 4 + caplen],
                    offset,
                )
            # other block types (NRB, ISB, DSB, custom …) carry no packets: skipped by design
