"""Shared fixtures: the public corpus (read in place), tshark, frame builders, temporary stores."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("WARDWATCH_CORPUS", ROOT.parent / "shared" / "corpus"))
PCAP_DIR = CORPUS / "pcap"
SAMPLE = ROOT / "samples" / "ward.pcapng"
GOLDEN = Path(__file__).parent / "golden"

# the sample generator doubles as the tests' library of wire-format builders
sys.path.insert(0, str(ROOT / "samples"))


def corpus_captures() -> list[Path]:
    """Every capture of the public corpus (empty when the corpus is not next to the clone)."""
    if not PCAP_DIR.is_dir():
        return []
    return sorted(p for p in PCAP_DIR.iterdir() if p.suffix in (".pcap", ".pcapng"))


@pytest.fixture
def corpus() -> Path:
    """The pcap folder of ../shared/corpus; skips with the reason when a user's clone has none."""
    if not PCAP_DIR.is_dir():
        pytest.skip(f"public corpus not found at {PCAP_DIR} (it sits beside the repository in the workplace)")
    return PCAP_DIR


def need_corpus_file(name: str) -> Path:
    """Path of one corpus capture, or skip."""
    path = PCAP_DIR / name
    if not path.is_file():
        pytest.skip(f"corpus capture {name} not found in {PCAP_DIR}")
    return path


@pytest.fixture
def tshark() -> str:
    """Path of tshark; ``make test`` installs it when running as root."""
    path = shutil.which("tshark")
    if path is None:
        pytest.skip("tshark is not installed (make test installs it with apt when run as root)")
    return path


# --- writing captures ----------------------------------------------------------------------------------------------


def write_pcap(
    path: Path,
    frames: Iterable[tuple[int, bytes] | tuple[int, bytes, int]],
    linktype: int = 1,
    order: str = "<",
    nsec: bool = False,
    snaplen: int = 262144,
) -> Path:
    """Write a classic pcap. Frames are (ts_ns, data) or (ts_ns, data, wirelen)."""
    magic = 0xA1B23C4D if nsec else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for item in frames:
        ts, data = item[0], item[1]
        wirelen = item[2] if len(item) == 3 else len(data)  # type: ignore[misc]
        sec, rest = divmod(ts, 1_000_000_000)
        frac = rest if nsec else rest // 1000
        out.append(struct.pack(order + "IIII", sec, frac, len(data), wirelen) + data)
    path.write_bytes(b"".join(out))
    return path


def dhcp_request_frame(mac: bytes, hostname: str) -> bytes:
    """A broadcast DHCPREQUEST from ``mac`` carrying ``hostname`` in option 12 (any text, even hostile)."""
    from generate_ward import dhcp, ethernet, ipv4, udp

    zero = b"\x00" * 4
    msg = dhcp(1, 3, 1, mac, zero, zero, hostname, None, None)
    return ethernet(
        mac, b"\xff" * 6, None, 0x0800, ipv4(zero, b"\xff" * 4, 17, udp(zero, b"\xff" * 4, 68, 67, msg), 64, 1)
    )


# --- a real PostgreSQL server for the store and CLI tests, started by the test setup (and stopped after) ----


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """URL of a throw-away PostgreSQL cluster on 127.0.0.1 (initdb + pg_ctl from Debian's postgresql)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.skip("PostgreSQL server binaries not installed (make test installs postgresql when run as root)")
    pytest.importorskip("psycopg")
    bindir = Path(found[-1]).parent
    # outside pytest's own (root-only) temporary tree: the server runs as the postgres account
    base = Path(tempfile.mkdtemp(prefix="wardwatch-pg-"))
    data, log = base / "data", base / "server.log"
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: use the postgres account the package created
        as_postgres = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres", "postgres")
    port = _free_port()
    subprocess.run(
        [*as_postgres, str(bindir / "initdb"), "-D", str(data), "--auth=trust", "-U", "wardwatch", "--no-sync",
         "-E", "UTF8", "--locale=C"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    subprocess.run(
        [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
         "-o", f"-p {port} -h 127.0.0.1 -k {base} -F", "start"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    try:
        yield f"postgresql+psycopg://wardwatch@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True, timeout=120,
        )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_db(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the test server (dropped afterwards)."""
    import psycopg

    name = "ww_" + uuid.uuid4().hex[:12]
    admin = postgres_server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{postgres_server}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store's two backends: an SQLite file and a database on a real PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "w.db")
    return str(request.getfixturevalue("postgres_db"))


@pytest.fixture
def stores() -> Iterator[list[object]]:
    """Stores a test opened; closed at teardown (PostgreSQL connections must not leak)."""
    opened: list[object] = []
    yield opened
    for store in opened:
        store.close()  # type: ignore[attr-defined]
