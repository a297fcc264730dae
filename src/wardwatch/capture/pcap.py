"""Classic libpcap files: both byte orders, micro- and nanosecond timestamps, and the Kuznetzov variant.

Format: https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html (file header section 4, packet
record section 5; link type and FCS bits of the LinkType field, section 4 "LinkType and additional
information").
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from wardwatch.capture.interface import Record
from wardwatch.capture.stream import ByteStream, StreamReader
from wardwatch.model.packet import RAW_ALIASES, LinkType

#: magic -> (byte order, nanosecond timestamps, record header length)
MAGICS: dict[bytes, tuple[str, bool, int]] = {
    b"\xd4\xc3\xb2\xa1": ("<", False, 16),
    b"\xa1\xb2\xc3\xd4": (">", False, 16),
    b"\x4d\x3c\xb2\xa1": ("<", True, 16),
    b"\xa1\xb2\x3c\x4d": (">", True, 16),
    b"\x34\xcd\xb2\xa1": ("<", False, 24),  # Kuznetzov's modified pcap (extra ifindex/protocol/type)
    b"\xa1\xb2\xcd\x34": (">", False, 24),
}

#: Largest record accepted regardless of a smaller snaplen (Wireshark's standard maximum).
MAX_RECORD = 262144


class PcapReader(StreamReader):
    """Streaming reader of one classic pcap file."""

    def __init__(self, stream: ByteStream, size: int, compressed: bool) -> None:
        super().__init__(stream, size, compressed)
        header = stream.read(24)
        if len(header) < 24:
            raise stream.fail(0, f"file header cut short ({len(header)} of 24 bytes)")
        magic = header[:4]
        if magic not in MAGICS:
            raise stream.fail(0, f"not a pcap file (magic {magic.hex()})")
        self._order, self._nsec, self._rec_len = MAGICS[magic]
        major, _minor, _zone, _sigfigs, snaplen, network = struct.unpack_from(self._order + "HHiIII", header, 4)
        if major != 2:
            raise stream.fail(4, f"unsupported pcap version {major}")
        self.snaplen = snaplen
        linktype = network & 0x03FFFFFF
        if linktype in RAW_ALIASES:
            linktype = LinkType.RAW
        self.linktype = linktype
        # the upper bits may announce an FCS at the end of each frame: it stays in the data (IP lengths bound
        # payloads, so it never reaches a dissector as payload)
        self._linktypes[linktype] = None
        self.format_name = "pcap-nsec" if self._nsec else "pcap"

    def __iter__(self) -> Iterator[Record]:
        """Records in file order; the file is closed when iteration ends (normally or by an error)."""
        try:
            yield from self._records()
        finally:
            self.close()

    def _records(self) -> Iterator[Record]:
        stream = self._stream
        unpack = struct.Struct(self._order + "IIII").unpack_from
        rec_len = self._rec_len
        scale = 1 if self._nsec else 1000
        limit = max(self.snaplen, MAX_RECORD)
        linktype = self.linktype
        number = 0
        while True:
            offset = stream.offset
            header = stream.read(rec_len)
            if not header:
                return
            if len(header) < rec_len:
                raise stream.fail(
                    offset,
                    f"cut short in the header of packet {number + 1} ({len(header)} of {rec_len} bytes)",
                )
            sec, frac, caplen, wirelen = unpack(header)
            if caplen > limit:
                raise stream.fail(
                    offset,
                    f"packet {number + 1} claims {caplen} captured bytes (limit {limit}): file is corrupt",
                )
            data = stream.read(caplen)
            number += 1
            if len(data) < caplen:
                raise stream.fail(offset, f"cut short in the middle of packet {number} ({len(data)} of {caplen} bytes)")
            yield Record(number, sec * 1_000_000_000 + frac * scale, 0, linktype, caplen, wirelen, data, offset)
