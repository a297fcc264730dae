"""FlowColumns: flows as columns that read as a sequence of Flow objects."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from wardwatch.model import CaptureId, DeviceId, Flow, FlowColumns
from wardwatch.model.flow import FLOW_COLUMNS, flow_sort_key


def make(flows: list[Flow]) -> FlowColumns:
    """Columns from Flow objects (the inverse of iterating), for the tests."""
    texts: dict[str, int] = {}

    def text(value: str | None) -> int:
        return -1 if value is None else texts.setdefault(value, len(texts))

    cols: dict[str, list[int]] = {name: [] for name in FLOW_COLUMNS}
    ptr, values = [0], []
    for f in flows:
        for name in FLOW_COLUMNS:
            value = getattr(f, name)
            if name in ("capture", "src_ip", "dst_ip", "initiator", "src_device", "dst_device"):
                cols[name].append(text(value))
            else:
                cols[name].append(-1 if value is None else value)
        values += f.vlans
        ptr.append(len(values))
    return FlowColumns(
        list(texts), {k: np.array(v, dtype=np.int64) for k, v in cols.items()}, np.array(ptr), np.array(values)
    )


def flow(i: int, capture: str = "c1", **kw: object) -> Flow:
    f = Flow(
        capture=CaptureId(capture), proto=6 if i % 2 else 17, src_ip=f"10.0.0.{i % 7}", src_port=40000 + i,
        dst_ip="2001:db8::1" if i % 3 == 0 else f"10.0.1.{i % 5}", dst_port=None if i % 4 == 0 else 104,
        first_ns=1000 - (i % 3), last_ns=2000 + i, packets_src=i, packets_dst=2 * i, bytes_src=60 * i,
        bytes_dst=70 * i, tcp_flags_src=0x12, tcp_flags_dst=0x10, initiator="syn",
        vlans=tuple(range(i % 3)), src_device=DeviceId(f"mac:00:00:00:00:00:{i:02x}"),
        dst_device=None if i % 5 == 0 else DeviceId("ip:10.0.1.1"),
    )  # fmt: skip
    return replace(f, **kw)  # type: ignore[arg-type]


FLOWS = [flow(i) for i in range(23)]


def test_reads_back_as_the_flows_it_holds() -> None:
    cols = make(FLOWS)
    assert len(cols) == 23 and list(cols) == FLOWS and cols == tuple(FLOWS) and tuple(FLOWS) == cols
    assert cols[0] == FLOWS[0] and cols[-1] == FLOWS[-1] and cols[5] == FLOWS[5]
    assert list(cols[3:17:4]) == FLOWS[3:17:4]
    assert cols != tuple(FLOWS[:-1]) and cols != (*FLOWS[:-1], flow(99))
    with pytest.raises(IndexError):
        cols[23]
    assert hash(cols) == hash(tuple(FLOWS))


def test_concat_take_and_sort() -> None:
    other = [flow(i, capture="c0", src_device=None) for i in range(9)]
    both = FlowColumns.concat([make(FLOWS), make(other)])
    assert list(both) == FLOWS + other
    order = np.array([5, 0, 30, 2, 2], dtype=np.int64)
    assert list(both.take(order)) == [(FLOWS + other)[i] for i in order.tolist()]
    assert list(both.sorted()) == sorted(FLOWS + other, key=flow_sort_key)
    assert list(FlowColumns.empty()) == [] and FlowColumns.concat([FlowColumns.empty(), make(other)]) == other
