"""BPF filter expressions (tcpdump's syntax) compiled by libpcap, for the kernel filter of a live socket.

Only the compiler of libpcap is used. For an interface, the filter is compiled on a libpcap handle activated on
that interface and closed again at once (nothing is captured through it, nothing is sent): on Linux the kernel
moves a frame's VLAN tag out of the frame before the filter sees it, and only a live handle makes libpcap emit
code that tests the tag where the kernel put it, so ``vlan 100`` and ``udp`` mean what they mean in tcpdump.
Without an interface (``pcap_open_dead``) the code tests tags inside the frame, as a capture file holds them.
libpcap is found with ``ctypes`` (Debian's ``libpcap0.8``, which tcpdump depends on); without it a filter cannot
be compiled and ``FilterError`` says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

from wardwatch.errors import InputError

#: ``PCAP_NETMASK_UNKNOWN``: filters that test broadcast addresses then fail to compile instead of guessing.
NETMASK_UNKNOWN = 0xFFFFFFFF

Instruction = tuple[int, int, int, int]
"""One classic BPF instruction: (code, jump if true, jump if false, k)."""


class FilterError(InputError):
    """A capture filter expression that cannot be compiled."""


class _Insn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]


class _Program(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_Insn))]


@functools.cache
def _libpcap() -> ctypes.CDLL:
    name = ctypes.util.find_library("pcap") or "libpcap.so.0.8"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise FilterError(f"libpcap is needed to compile a capture filter and was not found ({exc})") from exc
    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.pcap_compile.restype = ctypes.c_int
    lib.pcap_compile.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(_Program),
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_uint32,
    ]
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_geterr.argtypes = [ctypes.c_void_p]
    lib.pcap_freecode.argtypes = [ctypes.POINTER(_Program)]
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    lib.pcap_create.restype = ctypes.c_void_p
    lib.pcap_create.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    lib.pcap_activate.restype = ctypes.c_int
    lib.pcap_activate.argtypes = [ctypes.c_void_p]
    lib.pcap_statustostr.restype = ctypes.c_char_p
    lib.pcap_statustostr.argtypes = [ctypes.c_int]
    return lib


def compile_filter(
    expression: str, linktype: int = 1, snaplen: int = 262_144, interface: str | None = None
) -> tuple[Instruction, ...]:
    """``expression`` (pcap-filter(7) syntax) as classic BPF, optimised: for a socket on ``interface`` when given
    (see the module docstring; needs the rights to capture there), else for frames of ``linktype``."""
    lib = _libpcap()
    if interface is None:
        handle = lib.pcap_open_dead(linktype, snaplen)
        if not handle:
            raise FilterError("libpcap could not make a compiler handle")
    else:
        handle = _live_handle(lib, interface)
    program = _Program()
    try:
        if lib.pcap_compile(handle, ctypes.byref(program), expression.encode(), 1, NETMASK_UNKNOWN) != 0:
            reason = (lib.pcap_geterr(handle) or b"").decode(errors="replace")
            raise FilterError(f"capture filter {expression!r} does not compile: {reason}")
        try:
            return tuple(
                (program.bf_insns[i].code, program.bf_insns[i].jt, program.bf_insns[i].jf, program.bf_insns[i].k)
                for i in range(program.bf_len)
            )
        finally:
            lib.pcap_freecode(ctypes.byref(program))
    finally:
        lib.pcap_close(handle)


def _live_handle(lib: ctypes.CDLL, interface: str) -> int:
    errbuf = ctypes.create_string_buffer(256)
    handle = lib.pcap_create(interface.encode(), errbuf)
    if not handle:
        raise FilterError(f"libpcap cannot use {interface}: {errbuf.value.decode(errors='replace')}")
    status = lib.pcap_activate(handle)
    if status < 0:
        detail = (lib.pcap_geterr(handle) or lib.pcap_statustostr(status) or b"").decode(errors="replace")
        lib.pcap_close(handle)
        raise FilterError(f"libpcap cannot compile a filter for {interface}: {detail}")
    return int(handle)


def run_filter(program: tuple[Instruction, ...], frame: bytes, wirelen: int | None = None) -> int:
    """What the kernel's classic-BPF interpreter returns for ``frame`` (0: drop; else bytes to keep): the
    subset libpcap emits (loads, ALU, jumps, returns, scratch memory), for tests and for checking a program
    offline. Raises ``FilterError`` on an instruction it does not know."""
    a = x = 0
    mem = [0] * 16
    pc = 0
    length = len(frame) if wirelen is None else wirelen
    while pc < len(program):
        code, jt, jf, k = program[pc]
        cls = code & 0x07
        if cls in (0x00, 0x01):  # LD / LDX
            mode, size = code & 0xE0, code & 0x18
            width = {0x00: 4, 0x08: 2, 0x10: 1}.get(size, 4)
            if mode == 0x00:  # IMM
                value = k
            elif mode == 0x80:  # LEN
                value = length
            elif mode == 0x60:  # MEM
                value = mem[k & 15]
            elif mode in (0x20, 0x40):  # ABS / IND
                at = k + (x if mode == 0x40 else 0)
                if at + width > len(frame):
                    return 0
                value = int.from_bytes(frame[at : at + width], "big")
            elif mode == 0xA0 and cls == 0x01:  # MSH: 4 * (frame[k] & 0xf)
                if k >= len(frame):
                    return 0
                value = (frame[k] & 0x0F) * 4
            else:
                raise FilterError(f"BPF load mode {mode:#x} not understood")
            if cls == 0x00:
                a = value
            else:
                x = value
        elif cls == 0x02:  # ST
            mem[k & 15] = a
        elif cls == 0x03:  # STX
            mem[k & 15] = x
        elif cls == 0x04:  # ALU
            op, src = code & 0xF0, (x if code & 0x08 else k)
            result = _alu(op, a, src)
            if result is None:  # division by zero ends the program (drop); an unknown op is refused
                return 0
            a = result & 0xFFFFFFFF
        elif cls == 0x05:  # JMP
            op, src = code & 0xF0, (x if code & 0x08 else k)
            if op == 0x00:
                pc += k + 1
                continue
            taken = {0x10: a == src, 0x20: a > src, 0x30: a >= src, 0x40: bool(a & src)}.get(op)
            if taken is None:
                raise FilterError(f"BPF jump {op:#x} not understood")
            pc += 1 + (jt if taken else jf)
            continue
        elif cls == 0x06:  # RET
            return a if code & 0x18 == 0x10 else k
        elif cls == 0x07:  # MISC: TAX / TXA
            if code & 0xF8 == 0x00:
                x = a
            else:
                a = x
        pc += 1
    return 0


def _alu(op: int, a: int, src: int) -> int | None:
    """Classic BPF's ALU operations (None: division by zero)."""
    if op in (0x30, 0x90) and src == 0:
        return None
    if op == 0x00:
        return a + src
    if op == 0x10:
        return a - src
    if op == 0x20:
        return a * src
    if op == 0x30:
        return a // src
    if op == 0x40:
        return a | src
    if op == 0x50:
        return a & src
    if op == 0x60:
        return a << src
    if op == 0x70:
        return a >> src
    if op == 0x80:
        return -a
    if op == 0x90:
        return a % src
    if op == 0xA0:
        return a ^ src
    raise FilterError(f"BPF ALU op {op:#x} not understood")
