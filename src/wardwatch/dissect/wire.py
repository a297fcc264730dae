"""Helpers for the DNS wire format shared by DNS, mDNS, NBNS and DHCP (RFC 1035 §3.1, §4.1.4)."""

from __future__ import annotations

from wardwatch.dissect import native
from wardwatch.dissect.interface import MalformedPacket

#: A name with more labels than this (or more pointer jumps) is hostile or corrupt.
MAX_LABELS = 128


NameCache = dict[int, tuple[bytes, ...]]
"""Labels of the names of one message by the offset they start at (see ``read_name``)."""


def read_name(data: bytes, pos: int, cache: NameCache | None = None) -> tuple[str, int]:
    """Read a possibly compressed domain name at ``pos``.

    Returns the dotted name (no trailing dot; non-printable bytes escaped as ``\\DDD``) and the position just
    after the name in the original place. Raises ``MalformedPacket`` on truncation, pointer loops or more than
    ``MAX_LABELS`` labels. ``cache`` (one per message) remembers the labels of names by the offset they start at,
    so compression pointers to a name already read cost a lookup. Without a cache, the C parser reads the name
    when it is built (the same answers: this function is its reference).
    """
    c = native.c_dnswire
    if cache is None and c is not None:
        try:
            return c.read_name(data, pos)  # type: ignore[no-any-return]
        except ValueError as exc:
            raise MalformedPacket(str(exc)) from None
    return read_name_py(data, pos, cache)


def read_name_py(data: bytes, pos: int, cache: NameCache | None = None) -> tuple[str, int]:
    """``read_name`` in Python (the reference of the C parser)."""
    labels: list[bytes] = []
    end: int | None = None
    jumps = 0
    size = len(data)
    marks: list[tuple[int, int]] = []  # (offset, labels read before it): what to remember in the cache
    while True:
        if cache is not None:
            # only after a pointer: there the end of the name in place is already known
            known = cache.get(pos) if end is not None else None
            if known is not None:
                labels += known
                if len(labels) > MAX_LABELS:  # a long name behind a pointer must not make a longer one
                    raise MalformedPacket("DNS name has too many labels")
                break
            marks.append((pos, len(labels)))
        if pos >= size:
            raise MalformedPacket("DNS name runs past the end of the message")
        length = data[pos]
        if length >= 0xC0:
            if pos + 1 >= size:
                raise MalformedPacket("DNS compression pointer cut short")
            if end is None:
                end = pos + 2
            target = ((length & 0x3F) << 8) | data[pos + 1]
            jumps += 1
            if jumps > MAX_LABELS or target >= size:
                raise MalformedPacket("DNS compression pointer loop or out of range")
            pos = target
            continue
        if length & 0xC0:
            raise MalformedPacket(f"unsupported DNS label type 0x{length:02x}")
        pos += 1
        if length == 0:
            break
        if pos + length > size:
            raise MalformedPacket("DNS label runs past the end of the message")
        labels.append(data[pos : pos + length])
        pos += length
        if len(labels) > MAX_LABELS:
            raise MalformedPacket("DNS name has too many labels")
    if cache is not None:
        for at, before in marks:  # the name starting at an offset is the labels read from there on
            cache[at] = tuple(labels[before:])
    return name_text(labels), (end if end is not None else pos)


def name_text(labels: list[bytes]) -> str:
    """Labels as one dotted name, escaped as ``label_text`` escapes each label."""
    joined = b".".join(labels)
    # the usual case, in two C calls: printable, and no dot but the separators
    if labels and not joined.translate(None, _PLAIN_OR_DOT) and joined.count(b".") == len(labels) - 1:
        return joined.decode("ascii")
    return ".".join(map(label_text, labels))


#: Bytes a label may hold without escaping: printable ASCII except the dot and the backslash.
_PLAIN = bytes(b for b in range(0x21, 0x7F) if b not in (0x2E, 0x5C))
_PLAIN_OR_DOT = _PLAIN + b"."


def label_text(raw: bytes) -> str:
    """A label as text: printable ASCII kept, dots and other bytes escaped as in zone files."""
    if not raw.translate(None, _PLAIN):  # the usual case: nothing to escape
        return raw.decode("ascii")
    out = []
    for b in raw:
        if b == 0x2E or b == 0x5C:
            out.append("\\" + chr(b))
        elif 0x21 <= b <= 0x7E:
            out.append(chr(b))
        else:
            out.append(f"\\{b:03d}")
    return "".join(out)


def value_text(value: object, limit: int = 200) -> str:
    """A decoded field value (an HL7 field, a DICOM element) as printable text of at most ``limit`` characters."""
    return clean_text(str(value).encode("utf-8", "replace"))[:limit]


def clean_text(raw: bytes) -> str:
    """Bytes from the wire as a printable string (UTF-8 where valid, control characters escaped)."""
    text = raw.decode("utf-8", errors="backslashreplace")
    if text.isprintable():  # the usual case: nothing to escape
        return text.strip()
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text).strip()
