"""Type stub of the C record walkers (see _walk.c)."""

def walk_pcap(
    buf: bytes | bytearray, pos: int, end: int, rec_len: int, limit: int, big_endian: bool, max_records: int, /
) -> tuple[bytes, int, int, int]: ...
def walk_pcapng(
    buf: bytes | bytearray, pos: int, end: int, big_endian: bool, max_blocks: int, /
) -> tuple[bytes, bytes, int, int]: ...
