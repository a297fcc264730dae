"""The ward lab: simulated devices in network namespaces on one bridge, real peers inside them, a capture of
what they put on the wire.

Every device is a network namespace with its own MAC and IPv4 address, joined by a veth pair to a bridge that
lives in a namespace of its own (the host's interfaces and routes are never touched). ``capture`` runs tcpdump
on that bridge. Processes are started with ``ip netns exec`` and remembered by their ``Popen`` handle; ``close``
stops every one of them (by its own pid, never by name) and deletes the namespaces.

Needs root, ``ip`` (iproute2) and tcpdump; ``missing()`` says what is absent so a test can skip with the reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

SUBNET = "10.77.0"


def missing(*tools: str) -> str | None:
    """Why the lab cannot run here (None: it can)."""
    if os.geteuid() != 0:
        return "the ward lab creates network namespaces and needs root (CI runs as root)"
    for tool in ("ip", "tcpdump", *tools):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/bootstrap installs it with apt when run as root)"
    probe = f"wwprobe{os.getpid() % 100000}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=30)
    if made.returncode != 0:
        return f"this machine does not let root create network namespaces: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=30)
    return None


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


@dataclass
class Device:
    """One simulated device: a namespace with ``eth0`` on the lab bridge."""

    lab: WardLab
    name: str
    netns: str
    mac: str
    ip: str

    def popen(self, cmd: Sequence[str], cwd: str | None = None) -> subprocess.Popen[bytes]:
        """Start ``cmd`` inside this device, its output going to a log file; the lab stops it on close."""
        self.lab.started += 1
        log = open(self.lab.logs / f"{self.name}-{self.lab.started}.log", "wb")  # noqa: SIM115 - closed by stop
        proc = subprocess.Popen(  # noqa: S603 - the commands are the tests' own
            ["ip", "netns", "exec", self.netns, *cmd], stdout=log, stderr=subprocess.STDOUT, cwd=cwd
        )
        self.lab.processes.append((proc, log))
        return proc

    def run(self, cmd: Sequence[str], timeout: float = 60) -> str:
        """Run ``cmd`` inside this device to completion and return its output; raises with it if it fails."""
        proc = self.popen(cmd)
        proc.wait(timeout=timeout)
        text = self.lab.output(proc)
        if proc.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(cmd)} exited {proc.returncode}:\n{text}")
        return text

    def wait_listening(self, port: int, timeout: float = 20) -> None:
        """Wait until something in this device listens on TCP ``port`` (asked of the kernel, no packet sent)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = subprocess.run(
                ["ip", "netns", "exec", self.netns, "ss", "-Hltn", f"sport = :{port}"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout
            if out.strip():
                return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name}: nothing listens on port {port} after {timeout} s")


@dataclass
class WardLab:
    """A bridge and the devices on it (use ``open_lab``)."""

    prefix: str
    logs: Path
    """Where the output of every process goes (one file each)."""
    devices: dict[str, Device] = field(default_factory=dict)
    processes: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = field(default_factory=list)
    switch: str = ""
    started: int = 0

    def __post_init__(self) -> None:
        self.switch = f"{self.prefix}-sw"
        _run("ip", "netns", "add", self.switch)
        _run("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge", "stp_state", "0")
        _run("ip", "-n", self.switch, "link", "set", "br0", "up")

    def add(self, name: str, host: int) -> Device:
        """A device ``name`` at ``10.77.0.<host>`` with the locally administered MAC ``02:77:00:00:00:<host>``."""
        netns = f"{self.prefix}-{name}"
        mac = f"02:77:00:00:00:{host:02x}"
        ip = f"{SUBNET}.{host}"
        port = f"p{host}"
        _run("ip", "netns", "add", netns)
        _run("ip", "link", "add", port, "netns", self.switch, "type", "veth", "peer", "name", "eth0", "netns", netns)
        _run("ip", "-n", self.switch, "link", "set", port, "master", "br0", "up")
        _run("ip", "-n", netns, "link", "set", "eth0", "address", mac)
        _run("ip", "-n", netns, "addr", "add", f"{ip}/24", "dev", "eth0")
        _run("ip", "-n", netns, "link", "set", "lo", "up")
        _run("ip", "-n", netns, "link", "set", "eth0", "up")
        device = self.devices[name] = Device(self, name, netns, mac, ip)
        return device

    def add_sensor(self, name: str = "sensor", interface: str = "span0") -> Device:
        """A sensor namespace whose ``interface`` (no address) is a port of the bridge that gets every frame:
        the bridge is made a hub (it forgets MAC addresses at once, so it floods every frame to every port), the
        way a SPAN port mirrors a switch. The sensor's MAC is ``02:77:00:00:00:fe``; it has no IP (``ip`` is "")."""
        netns = f"{self.prefix}-{name}"
        _run("ip", "-n", self.switch, "link", "set", "br0", "type", "bridge", "ageing_time", "0")
        _run("ip", "netns", "add", netns)
        veth = ("ip", "link", "add", "mirror", "netns", self.switch, "type", "veth")
        _run(*veth, "peer", "name", interface, "netns", netns)
        _run("ip", "-n", self.switch, "link", "set", "mirror", "master", "br0", "up")
        _run("ip", "-n", netns, "link", "set", interface, "address", "02:77:00:00:00:fe")
        device = self.devices[name] = Device(self, name, netns, "02:77:00:00:00:fe", "")
        return device

    @contextmanager
    def capture(self, path: Path) -> Iterator[Path]:
        """tcpdump on the bridge into ``path`` (pcap) while the block runs; every packet flushed at the end."""
        proc = subprocess.Popen(  # noqa: S603
            [
                "ip",
                "netns",
                "exec",
                self.switch,
                "tcpdump",
                "-i",
                "br0",
                "--immediate-mode",
                "-U",
                "-s",
                "0",
                "-w",
                str(path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert proc.stderr is not None
        self.processes.append((proc, proc.stderr))
        line = proc.stderr.readline().decode(errors="replace")  # "tcpdump: listening on br0 ..."
        if "listening" not in line:
            raise RuntimeError(f"tcpdump did not start: {line}")
        try:
            yield path
        finally:
            # the last ACKs and FINs: wait until the file has stopped growing for a moment
            size, still = -1, 0
            while still < 3:
                time.sleep(0.1)
                now = path.stat().st_size if path.exists() else 0
                still = still + 1 if now == size else 0
                size = now
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=20)

    def output(self, proc: subprocess.Popen[bytes]) -> str:
        """What a process this lab started has written so far."""
        for p, log in self.processes:
            if p is proc:
                log.flush()
                return Path(log.name).read_text(errors="replace") if isinstance(log.name, str) else ""
        raise KeyError(proc.pid)

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def close(self) -> None:
        """Stop every process the lab started, and whatever they left running inside its namespaces (by pid,
        as the kernel lists them for each namespace); delete the namespaces."""
        for proc, stream in reversed(self.processes):
            self._stop(proc)
            stream.close()
        for netns in [d.netns for d in self.devices.values()] + [self.switch]:
            pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, timeout=30).stdout
            for pid in pids.split():
                with suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=30)


@contextmanager
def open_lab(logs: Path, prefix: str | None = None) -> Iterator[WardLab]:
    """A fresh lab, torn down when the block ends (also on failure); process output goes to ``logs``."""
    logs.mkdir(parents=True, exist_ok=True)
    lab = WardLab(prefix or f"ww{os.getpid() % 100000}", logs)
    try:
        yield lab
    finally:
        lab.close()
