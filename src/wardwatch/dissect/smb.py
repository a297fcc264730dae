"""SMB1 ([MS-CIFS] 2.2.4.52, 2.2.4.53), SMB2/3 negotiation ([MS-SMB2] 2.2.3, 2.2.4) and NTLMSSP ([MS-NLMP]
2.2.1, 2.2.2.10) over NetBIOS session service / direct TCP (RFC 1002 §4.3; [MS-SMB2] 2.1), ports 139 and 445.

What the two sides say of themselves: dialects (a client offering only SMB1 dialects, or a server choosing
one, is a legacy signal: ``protocol`` ``smb:NT LM 0.12``), SMB1's native OS and LAN manager strings, and the
Windows version (major.minor build) and computer names in NTLMSSP messages. User names are never recorded.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from wardwatch.dissect.interface import MalformedPacket, PayloadTest, StreamSelector, observe_stream
from wardwatch.dissect.reassembly import HalfStream, TcpStream
from wardwatch.dissect.wire import clean_text
from wardwatch.model.observation import Attribute, Observation

SMB1, SMB2 = b"\xffSMB", b"\xfeSMB"
CLAIM = (PayloadTest(4, b"\xff\xff\xff\xff", SMB1), PayloadTest(4, b"\xff\xff\xff\xff", SMB2))
SMB1_NEGOTIATE, SMB1_SESSION_SETUP = 0x72, 0x73
SMB2_NEGOTIATE = 0x0000
NTLMSSP = b"NTLMSSP\x00"
NTLM_NEGOTIATE_VERSION = 0x02000000
SMB2_DIALECTS = {0x0202: "2.0.2", 0x0210: "2.1", 0x0300: "3.0", 0x0302: "3.0.2", 0x0311: "3.1.1"}
AV_NB_COMPUTER, AV_DNS_COMPUTER = 1, 3
SOURCE = "smb"
#: SMB messages read per direction.
MAX_MESSAGES = 16


def windows_name(major: int, minor: int, build: int) -> str:
    """The Windows release an NTLMSSP version names ([MS-NLMP] 2.2.2.10; build numbers from Microsoft's
    release information)."""
    names = {
        (5, 0): "Windows 2000",
        (5, 1): "Windows XP",
        (5, 2): "Windows XP x64 / Server 2003",
        (6, 0): "Windows Vista / Server 2008",
        (6, 1): "Windows 7 / Server 2008 R2",
        (6, 2): "Windows 8 / Server 2012",
        (6, 3): "Windows 8.1 / Server 2012 R2",
    }
    if (major, minor) == (10, 0):
        name = "Windows 11 / Server 2022+" if build >= 22000 else "Windows 10 / Server 2016-2019"
    else:
        name = names.get((major, minor), "Windows")
    return f"{name} ({major}.{minor} build {build})"


def nbss_messages(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(offset, body) of the session messages (type 0) of one direction; stops at a partial one."""
    pos = 0
    for _ in range(MAX_MESSAGES * 2):
        if pos + 4 > len(data):
            return
        kind, length = data[pos], int.from_bytes(data[pos + 1 : pos + 4], "big") & 0x1FFFF
        if pos + 4 + length > len(data):
            if kind == 0:
                yield pos, data[pos + 4 :]  # cut by the reassembly caps: what there is
            return
        if kind == 0:
            yield pos, data[pos + 4 : pos + 4 + length]
        pos += 4 + length


def utf16_strings(raw: bytes) -> list[str]:
    """NUL-terminated UTF-16LE strings."""
    text = raw[: len(raw) // 2 * 2].decode("utf-16-le", errors="replace")
    return [clean_text(s.encode()) for s in text.split("\x00") if s.strip()]


def ntlmssp_facts(blob: bytes) -> list[tuple[Attribute, str, float]]:
    """OS version and computer names an NTLMSSP message states of its sender."""
    at = blob.find(NTLMSSP)
    if at < 0 or len(blob) < at + 12:
        return []
    msg = blob[at:]
    kind = struct.unpack_from("<I", msg, 8)[0]
    out: list[tuple[Attribute, str, float]] = []
    version_at = {1: 32, 2: 48, 3: 64}.get(kind)
    flags_at = {1: 12, 2: 20, 3: 60}.get(kind)
    if version_at is None or flags_at is None or len(msg) < version_at + 8:
        return out
    flags = struct.unpack_from("<I", msg, flags_at)[0]
    if flags & NTLM_NEGOTIATE_VERSION:
        major, minor, build = msg[version_at], msg[version_at + 1], struct.unpack_from("<H", msg, version_at + 2)[0]
        if major:
            out.append((Attribute.OS, windows_name(major, minor, build), 0.7))

    def field(pos: int) -> bytes:
        length, _max, offset = struct.unpack_from("<HHI", msg, pos)
        return msg[offset : offset + length] if offset + length <= len(msg) else b""

    if kind == 2:  # CHALLENGE: target info AV pairs name the server
        info, pos = field(40), 0
        while pos + 4 <= len(info):
            av, n = struct.unpack_from("<HH", info, pos)
            if av == 0:
                break
            value = info[pos + 4 : pos + 4 + n]
            if av in (AV_NB_COMPUTER, AV_DNS_COMPUTER):
                names = utf16_strings(value)
                if names:
                    out.append((Attribute.HOSTNAME, names[0].lower(), 0.85 if av == AV_DNS_COMPUTER else 0.8))
            pos += 4 + n
    elif kind == 3:  # AUTHENTICATE: the workstation name is the client's
        names = utf16_strings(field(44))
        if names:
            out.append((Attribute.HOSTNAME, names[0].lower(), 0.7))
    return out


def smb1_strings(msg: bytes, unicode: bool, request: bool) -> list[str]:
    """Native OS, native LAN manager (…) of an SMB1 Session Setup AndX with extended security."""
    words = msg[32]
    pos = 33 + 2 * words
    if pos + 2 > len(msg) or words not in (4, 12):
        return []
    blob_len = struct.unpack_from("<H", msg, 33 + (14 if request else 6))[0]
    start = pos + 2 + blob_len
    if unicode and start % 2:  # strings are aligned on a 2-byte boundary from the start of the header
        start += 1
    tail = msg[start : pos + 2 + struct.unpack_from("<H", msg, pos)[0]]
    if unicode:
        return utf16_strings(tail)
    return [clean_text(s) for s in tail.split(b"\x00") if s.strip()]


class SmbDissector:
    """Dialects, native OS strings and NTLMSSP Windows versions and names from SMB sessions."""

    name = "smb"
    stream = StreamSelector(claim=CLAIM, tcp_ports=frozenset({139, 445}), packets=8, byte_limit=16 * 1024)

    def dissect_stream(self, stream: TcpStream) -> Iterator[Observation]:
        offered: list[str] = []
        problems: list[str] = []
        for half in (stream.orig, stream.resp):
            if half is not None:
                yield from self._half(stream, half, offered, problems)
        if offered and not any(d.startswith("SMB 2") for d in offered) and stream.orig is not None:
            yield observe_stream(stream, stream.orig, 0, Attribute.PROTOCOL, "smb:smb1-only", 0.9, SOURCE)
        if problems:
            raise MalformedPacket("; ".join(sorted(set(problems))))

    def _half(
        self, stream: TcpStream, half: HalfStream, offered: list[str], problems: list[str]
    ) -> Iterator[Observation]:
        seen: set[tuple[Attribute, str]] = set()

        def obs(
            offset: int, attribute: Attribute, value: str, conf: float, source: str = SOURCE
        ) -> Iterator[Observation]:
            if value and (attribute, value) not in seen:
                seen.add((attribute, value))
                yield observe_stream(stream, half, offset, attribute, value, conf, source)

        for offset, msg in nbss_messages(half.data):
            try:
                if msg[:4] == SMB1 and len(msg) >= 35:
                    cmd, flags, flags2 = msg[4], msg[9], struct.unpack_from("<H", msg, 10)[0]
                    reply = bool(flags & 0x80)
                    if cmd == SMB1_NEGOTIATE and not reply:
                        count = struct.unpack_from("<H", msg, 33 + 2 * msg[32])[0]
                        raw = msg[35 + 2 * msg[32] : 35 + 2 * msg[32] + count]
                        offered += [clean_text(d.rstrip(b"\x00")) for d in raw.split(b"\x02") if d.strip(b"\x00")]
                    elif cmd == SMB1_NEGOTIATE and reply and msg[32] >= 1:
                        index = struct.unpack_from("<H", msg, 33)[0]
                        if index != 0xFFFF and index < len(offered) and not offered[index].startswith("SMB 2"):
                            yield from obs(offset, Attribute.PROTOCOL, f"smb:{offered[index]}", 0.9)
                    elif cmd == SMB1_SESSION_SETUP:
                        strings = smb1_strings(msg, bool(flags2 & 0x8000), not reply)
                        if strings:
                            yield from obs(offset, Attribute.OS, strings[0], 0.75, "smb-native-os")
                        if len(strings) > 1:
                            yield from obs(offset, Attribute.SOFTWARE, strings[1], 0.7, "smb-native-lanman")
                        for attribute, value, conf in ntlmssp_facts(msg):
                            yield from obs(offset, attribute, value, conf, "ntlmssp")
                elif msg[:4] == SMB2 and len(msg) >= 64:
                    cmd, flags = struct.unpack_from("<H", msg, 12)[0], struct.unpack_from("<I", msg, 16)[0]
                    if cmd == SMB2_NEGOTIATE and flags & 1 and len(msg) >= 70:
                        dialect = struct.unpack_from("<H", msg, 68)[0]
                        if dialect in SMB2_DIALECTS:
                            yield from obs(offset, Attribute.PROTOCOL, f"smb:{SMB2_DIALECTS[dialect]}", 0.9)
                    elif cmd == SMB2_NEGOTIATE and len(msg) >= 100:
                        offered.append("SMB 2")
                    for attribute, value, conf in ntlmssp_facts(msg):
                        yield from obs(offset, attribute, value, conf, "ntlmssp")
            except struct.error:
                problems.append("SMB message shorter than its fields")
