"""Asset lists (CMMS exports, CSV or XLSX) read into ``Asset`` rows, and reconciled with the inventory.

Headers are matched case-insensitively (spaces and dashes count as ``_``): ``asset_id`` is required; ``vendor``,
``model``, ``serial``, ``firmware``, ``mac``, ``ip``, ``location`` are understood; every other column is kept
as it is. A row that cannot be used (no asset id, a MAC or IP that is not one, an asset id seen before in the
same file) is reported by file and line and skipped; the rest is read.
"""

from __future__ import annotations

import csv
import ipaddress
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from wardwatch.errors import InputError
from wardwatch.model.asset import Asset, AssetMatch, Reconciliation
from wardwatch.model.inventory import Device, DeviceKind

KNOWN = ("asset_id", "vendor", "model", "serial", "firmware", "mac", "ip", "location")
#: Header spellings CMMS exports use for the known columns.
ALIASES = {"asset": "asset_id", "asset_no": "asset_id", "asset_number": "asset_id", "assetid": "asset_id",
           "tag": "asset_id", "manufacturer": "vendor", "make": "vendor", "serial_number": "serial",
           "serial_no": "serial", "sn": "serial", "software": "firmware", "firmware_version": "firmware",
           "mac_address": "mac", "ip_address": "ip", "ipv4": "ip", "department": "location"}  # fmt: skip
_HEX = re.compile(r"[0-9a-fA-F]")


class AssetListError(InputError):
    """An asset list that cannot be read at all (unknown format, no asset id column, unreadable file)."""


def _header(text: object) -> str:
    key = re.sub(r"[\s\-./]+", "_", str(text or "").strip().lower()).strip("_")
    return ALIASES.get(key, key)


def normalise_mac(text: str) -> str | None:
    """``00-09-FB-4A-00-01``, ``0009.fb4a.0001``, ``0009fb4a0001`` … as ``00:09:fb:4a:00:01`` (None: not a MAC)."""
    digits = "".join(_HEX.findall(text))
    if len(digits) != 12 or len(re.sub(r"[0-9a-fA-F:\-. ]", "", text)) > 0:
        return None
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2)).lower()


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of a CSV or XLSX file, the header row first."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        try:
            import openpyxl

            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds on a broken file
            raise AssetListError(f"{path}: not a readable XLSX workbook ({type(exc).__name__}: {exc})") from exc
        try:
            sheet = book.worksheets[0]
            for n, row in enumerate(sheet.iter_rows(values_only=True), start=1):
                yield n, ["" if v is None else str(v).strip() for v in row]
        finally:
            book.close()
        return
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            sample = fh.read(4096)
            fh.seek(0)
            try:
                dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            for n, line in enumerate(csv.reader(fh, dialect), start=1):
                yield n, [cell.strip() for cell in line]
    except UnicodeDecodeError as exc:
        raise AssetListError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise AssetListError(f"{path}: {exc.strerror or exc}") from exc


def read_assets(path: str | os.PathLike[str]) -> tuple[list[Asset], list[str]]:
    """The assets of one list, and the rows skipped (``file:line: why``)."""
    p = Path(path)
    rows = _rows(p)
    header: list[str] | None = None
    for _, cells in rows:
        if any(cells):
            header = [_header(c) for c in cells]
            break
    if header is None:
        raise AssetListError(f"{p}: empty: no header row")
    if "asset_id" not in header:
        raise AssetListError(f"{p}: no asset id column (headers: {', '.join(h for h in header if h)})")
    assets: list[Asset] = []
    problems: list[str] = []
    seen: set[str] = set()
    for n, cells in rows:
        if not any(cells):
            continue
        values = dict(zip(header, cells + [""] * (len(header) - len(cells)), strict=False))
        where = f"{p.name}:{n}"
        asset_id = values.get("asset_id", "")
        if not asset_id:
            problems.append(f"{where}: no asset id: row skipped")
            continue
        if asset_id in seen:
            problems.append(f"{where}: asset id {asset_id!r} already given above: row skipped")
            continue
        mac = values.get("mac") or None
        if mac is not None and (mac := normalise_mac(mac)) is None:
            problems.append(f"{where}: {values['mac']!r} is not a MAC address: row skipped")
            continue
        ip = values.get("ip") or None
        if ip is not None:
            try:
                ip = str(ipaddress.ip_address(ip))
            except ValueError:
                problems.append(f"{where}: {ip!r} is not an IP address: row skipped")
                continue
        seen.add(asset_id)
        extra = tuple((h, v) for h, v in values.items() if h and h not in KNOWN and v)
        assets.append(
            Asset(
                asset_id=asset_id, vendor=values.get("vendor") or None, model=values.get("model") or None,
                serial=values.get("serial") or None, firmware=values.get("firmware") or None, mac=mac, ip=ip,
                location=values.get("location") or None, extra=extra, source=where,
            )
        )  # fmt: skip
    return assets, problems


def reconcile(assets: Iterable[Asset], devices: Sequence[Device]) -> Reconciliation:
    """Each asset on the device with its MAC, else its IP, else its serial number (as the device reported it:
    HL7 PRT-20, DICOM (0018,1000), LLDP-MED …); what is left on either side."""
    by_mac = {mac: d for d in devices for mac in d.macs}
    by_ip: dict[str, Device] = {}
    for d in sorted(devices, key=lambda d: (d.kind is not DeviceKind.MAC, d.id)):  # MAC devices first
        for ip in d.ips:
            by_ip.setdefault(ip, d)
    by_serial: dict[str, Device] = {}
    for d in devices:
        for e in d.evidence:
            if e.attribute == "serial":
                by_serial.setdefault(e.value.strip().lower(), d)
    matched: list[AssetMatch] = []
    listed: list[Asset] = []
    for a in assets:
        serial = a.serial.strip().lower() if a.serial else None
        hit: tuple[str | None, Device | None] = (None, None)
        if a.mac and a.mac in by_mac:
            hit = ("mac", by_mac[a.mac])
        elif a.ip and a.ip in by_ip:
            hit = ("ip", by_ip[a.ip])
        elif serial and serial in by_serial:
            hit = ("serial", by_serial[serial])
        how, device = hit
        if device is None or how is None:
            listed.append(a)
        else:
            matched.append(AssetMatch(a, device.id, how))
    claimed = {m.device for m in matched}
    seen = tuple(sorted(d.id for d in devices if d.kind is DeviceKind.MAC and not d.router and d.id not in claimed))
    return Reconciliation(tuple(matched), tuple(listed), seen)
