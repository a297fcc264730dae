"""Live monitoring in the ward lab: ``wardwatch monitor`` on a sensor port of the lab's bridge, real peers
talking DICOM and HL7 through it, and the proof that the sensor stays silent.

The sensor is a namespace of its own whose interface is a bridge port getting every frame (``add_sensor``).
Its silence is measured by the kernel, not by wardwatch: the interface's TX counter, and nftables counters on
the interface's egress hook and on the namespace's output hook, must stay at exactly 0 for the whole run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from tests.wardlab import Device, WardLab, missing, open_lab
from wardwatch.model.event import EventKind
from wardwatch.store import Store

PEERS = str(Path(__file__).with_name("peers.py"))
ROOT = Path(__file__).resolve().parents[2]
WARDWATCH = str(Path(sys.executable).parent / "wardwatch")
ORU = (
    "MSH|^~\\&|MX450^00095CFFFE0A0B0C^EUI-64|ICU_WEST|HL7ENGINE|GENERAL_HOSP|20261201080000||ORU^R01^ORU_R01"
    "|MON0001|P|2.6\n"
    "SFT|Philips Medical Systems|M.00.03|IntelliVue MX450|B42\n"
    "PID|1||MRN0000042^^^HOSP^MR||DOE^JANE||19580214|F\n"
)
NFT_OUTPUT = """
table inet wwsilence {
    chain output { type filter hook output priority 0; counter; }
}
"""
#: The netdev egress hook (Linux 5.16+) counts every frame leaving span0, whatever made it.
NFT_EGRESS = """
table netdev wwsilence {
    chain egress { type filter hook egress device span0 priority 0; counter; }
}
"""


def nft_counters(sensor: Device) -> list[int]:
    """Packets counted by the sensor's nftables counters (egress of span0, output of the namespace)."""
    out = subprocess.run(
        ["ip", "netns", "exec", sensor.netns, "nft", "-j", "list", "ruleset"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    return [
        item["rule"]["expr"][0]["counter"]["packets"]
        for item in json.loads(out)["nftables"]
        if "rule" in item and item["rule"]["expr"] and "counter" in item["rule"]["expr"][0]
    ]


def tx_packets(sensor: Device) -> int:
    out = sensor.run(["cat", "/sys/class/net/span0/statistics/tx_packets"])
    return int(out.strip())


def wait_for(what: str, check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not happen within {timeout} s")


@dataclass
class Run:
    ward: WardLab
    sensor: Device
    db: Path
    monitor: subprocess.Popen[bytes]
    syslog: socket.socket
    """A Unix datagram socket standing in for the local syslog daemon (``--syslog-socket``)."""

    def syslog_lines(self) -> list[str]:
        lines = []
        self.syslog.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                lines.append(self.syslog.recv(65536).decode())
        return lines

    def store(self) -> Store:
        return Store.open(str(self.db), create=False)

    def events(self, kind: EventKind | None = None) -> list[object]:
        st = self.store()
        try:
            return [e for e in st.events() if kind is None or e.kind is kind]
        finally:
            st.close()


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    why = missing("nft", "storescp", "storescu")
    if why:
        pytest.skip(why)
    db = tmp_path / "live.db"
    with open_lab(tmp_path / "logs") as ward:
        sensor = ward.add_sensor()
        rules = tmp_path / "silence.nft"
        rules.write_text(NFT_OUTPUT)
        sensor.run(["nft", "-f", str(rules)])
        rules.write_text(NFT_EGRESS)
        try:  # an older kernel has no egress hook: the TX counter and the output hook still count then
            sensor.run(["nft", "-f", str(rules)])
        except RuntimeError as exc:
            print(f"nftables egress hook unavailable: {exc}", file=sys.stderr)
        log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        log.bind(str(tmp_path / "syslog.sock"))
        proc = sensor.popen(
            [WARDWATCH, "monitor", "-i", "span0", "--harden", "--db", str(db), "--flush-seconds", "0.5", "--syslog",
             "--syslog-socket", str(tmp_path / "syslog.sock")],
            cwd=str(ROOT),
        )  # fmt: skip
        r = Run(ward, sensor, db, proc, log)

        def capturing() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"monitor exited {proc.returncode}: {ward.output(proc)}")
            if not db.exists():
                return False
            try:  # the monitor may still be creating the schema: a reader must not race it
                st = r.store()
            except Exception:
                return False
            try:
                return any(s.state == "capturing" for s in st.status())
            except Exception:
                return False
            finally:
                st.close()

        try:
            wait_for("the monitor to start capturing", capturing, timeout=60)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; its output so far: {ward.output(proc)}") from None
        yield r
        log.close()


def stop(run: Run) -> str:
    run.monitor.send_signal(signal.SIGTERM)
    run.monitor.wait(timeout=60)
    out = run.ward.output(run.monitor)
    assert run.monitor.returncode == 0, out
    return out


def test_monitor_fills_the_inventory_and_never_transmits(run: Run, tmp_path: Path) -> None:
    ward = run.ward
    pacs, ct, engine, mon = ward.add("pacs", 10), ward.add("ct", 21), ward.add("hl7eng", 30), ward.add("mx450", 41)
    py = [sys.executable, PEERS]
    pacs.popen(["storescp", "-aet", "PACS_MAIN", "-od", str(tmp_path), "11112"])
    engine.popen([*py, "hl7-server", "2575", "HL7ENGINE", "GENERAL_HOSP"], cwd=str(ROOT))
    pacs.wait_listening(11112)
    engine.wait_listening(2575)
    image = get_testdata_file("CT_small.dcm")
    assert image
    ct.run(["storescu", "-aet", "CT_WEST1", "-aec", "PACS_MAIN", pacs.ip, "11112", image])
    (tmp_path / "oru.hl7").write_text(ORU)
    out = mon.run([*py, "hl7-send", engine.ip, "2575", str(tmp_path / "oru.hl7")])
    assert "ack AA" in out, out
    time.sleep(1.5)  # the last FINs, then a flush
    log = stop(run)

    assert tx_packets(run.sensor) == 0
    counters = nft_counters(run.sensor)
    assert counters in ([0], [0, 0]), counters  # the output hook, and the egress hook where the kernel has one
    with sqlite3.connect(run.db) as conn:  # written by the monitor and its writer children, never damaged
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    st = run.store()
    try:
        status = {s.interface: s for s in st.status()}
        devices = {d.macs[0]: d for d in st.devices() if d.macs}
        kinds = [e.kind for e in st.events()]
        captures = st.captures()
    finally:
        st.close()
    span = status["span0"]
    assert span.state == "stopped" and span.outgoing == 0 and span.drops == 0 and span.packets > 20, span
    assert {c.format for c in captures} == {"live"}
    for dev in (pacs, ct, engine, mon):
        assert dev.mac in devices, dev.name
        assert dev.ip in devices[dev.mac].ips, dev.name
    assert "02:77:00:00:00:fe" not in devices, "the sensor's own MAC was seen on the wire"
    seen = {
        name: {(e.attribute, e.value) for e in devices[d.mac].evidence}
        for name, d in ward.devices.items()
        if d.mac in devices
    }
    assert ("ae_title", "CT_WEST1") in seen["ct"] and ("ae_title", "PACS_MAIN") in seen["pacs"]
    assert any(a == "implementation" and v.startswith("OFFIS_DCMTK_") for a, v in seen["ct"])
    assert ("application", "MX450") in seen["mx450"] and ("facility", "ICU_WEST") in seen["mx450"]
    assert ("message", "hl7:ORU^R01") in seen["mx450"], seen["mx450"]
    assert EventKind.NEW_DEVICE in kinds and EventKind.NEW_PATH in kinds
    lines = [json.loads(x) for x in log.splitlines() if x.startswith("{")]
    assert {x["kind"] for x in lines} >= {"new-device", "new-path"}, log
    cef = run.syslog_lines()  # the same events, in CEF, to syslog
    assert len(cef) == len(lines) and all("CEF:0|wardwatch|wardwatch|" in x for x in cef)
    assert sum("|new-device|" in x for x in cef) == sum(x["kind"] == "new-device" for x in lines)


def test_a_new_device_is_an_event_within_two_seconds(run: Run) -> None:
    ward = run.ward
    before = len(run.events(EventKind.NEW_DEVICE))
    newcomer = ward.add("pump7", 77)  # its link comes up: its first frames (IPv6 DAD, MLD) go out at once
    newcomer.run([sys.executable, "-c", _UDP_HELLO.format(ip="10.77.0.1")])

    def seen() -> bool:
        return any(e.device == f"mac:{newcomer.mac}" for e in run.events(EventKind.NEW_DEVICE))  # type: ignore[attr-defined]

    wait_for("a new-device event", seen, timeout=10)
    visible = time.time_ns()
    event = next(e for e in run.events(EventKind.NEW_DEVICE) if e.device == f"mac:{newcomer.mac}")  # type: ignore[attr-defined]
    first_frame = event.ts_ns  # type: ignore[attr-defined]
    assert len(run.events(EventKind.NEW_DEVICE)) > before
    assert 0 <= (visible - first_frame) / 1e9 <= 2.0, (visible - first_frame) / 1e9
    stop(run)
    assert tx_packets(run.sensor) == 0


def test_an_interface_that_goes_away_is_reported_and_captured_again(run: Run) -> None:
    ward = run.ward
    ward_switch = ward.switch
    subprocess.run(["ip", "-n", ward_switch, "link", "del", "mirror"], check=True, timeout=30)  # span0 goes too
    wait_for("an interface-lost event", lambda: run.events(EventKind.INTERFACE_LOST), timeout=15)
    assert run.monitor.poll() is None, "the monitor must keep running"
    veth = ["ip", "link", "add", "mirror", "netns", ward_switch, "type", "veth"]
    subprocess.run([*veth, "peer", "name", "span0", "netns", run.sensor.netns], check=True, timeout=30)
    # the way an operator brings a replaced SPAN port back: hardened, then up (the monitor reopens it)
    run.sensor.run([sys.executable, "-c", "from wardwatch.capture.live import harden; harden('span0')"])
    subprocess.run(["ip", "-n", ward_switch, "link", "set", "mirror", "master", "br0", "up"], check=True, timeout=30)
    wait_for("an interface-back event", lambda: run.events(EventKind.INTERFACE_BACK), timeout=15)
    dev = ward.add("late", 88)
    dev.run([sys.executable, "-c", _UDP_HELLO.format(ip="10.77.0.1")])
    wait_for(
        "the late device in the store",
        lambda: any(e.device == f"mac:{dev.mac}" for e in run.events(EventKind.NEW_DEVICE)),  # type: ignore[attr-defined]
        timeout=15,
    )
    stop(run)
    assert tx_packets(run.sensor) == 0


_UDP_HELLO = (
    "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
    "[s.sendto(b'hello', ('{ip}', 9)) for _ in range(3)]"
)


def test_a_link_that_goes_down_shows_in_the_status(run: Run) -> None:
    def message() -> str:
        st = run.store()
        try:
            return next(s.message for s in st.status() if s.interface == "span0")
        finally:
            st.close()

    subprocess.run(["ip", "-n", run.ward.switch, "link", "set", "mirror", "down"], check=True, timeout=30)
    wait_for("link down in the status", lambda: "link down" in message(), timeout=15)
    subprocess.run(["ip", "-n", run.ward.switch, "link", "set", "mirror", "up"], check=True, timeout=30)
    wait_for("the link back in the status", lambda: "link down" not in message(), timeout=15)
    assert run.monitor.poll() is None
    stop(run)
    assert tx_packets(run.sensor) == 0


def test_monitor_refuses_an_interface_it_cannot_open(tmp_path: Path) -> None:
    """A typo in the interface name: a one-line error and exit code 3, not a traceback (no root needed)."""
    proc = subprocess.run(
        [WARDWATCH, "monitor", "-i", "nosuchif0", "--db", str(tmp_path / "x.db")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert "nosuchif0" in proc.stderr and "Traceback" not in proc.stderr


def test_monitor_without_the_right_to_capture_says_so(tmp_path: Path) -> None:
    """Not root (no CAP_NET_RAW): a one-line reason and exit code 3."""
    if missing() or shutil.which("setpriv") is None:
        pytest.skip(missing() or "setpriv (util-linux) is not installed")
    work = Path(tempfile.mkdtemp(prefix="wardwatch-nobody-"))
    try:
        work.chmod(0o777)
        proc = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", WARDWATCH, "monitor",
             "-i", "lo", "--allow-unhardened", "--db", str(work / "x.db")],
            capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": str(work)},
        )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert proc.returncode == 3, proc.stderr
    assert "CAP_NET_RAW" in proc.stderr and "Traceback" not in proc.stderr
