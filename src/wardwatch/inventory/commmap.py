"""The communication map: flows aggregated into edges between devices, per service."""

from __future__ import annotations

from collections.abc import Iterable

from wardwatch.model.flow import Edge, Flow
from wardwatch.model.inventory import DeviceId

EdgeKey = tuple[DeviceId, DeviceId, int, int | None]


def build_edges(flows: Iterable[Flow]) -> list[Edge]:
    """One edge per (initiator device, responder device, protocol, responder port).

    Flows whose responder is not a device (broadcast and multicast destinations) have no edge; they stay in
    the flow list.
    """
    acc: dict[EdgeKey, list[int]] = {}
    get = acc.get
    for f in flows:
        src, dst = f.src_device, f.dst_device
        if src is None or dst is None:
            continue
        key = (src, dst, f.proto, f.dst_port)
        a = get(key)
        packets = f.packets_src + f.packets_dst
        size = f.bytes_src + f.bytes_dst
        if a is None:
            acc[key] = [1, packets, size, f.first_ns, f.last_ns]
        else:
            a[0] += 1
            a[1] += packets
            a[2] += size
            if f.first_ns < a[3]:
                a[3] = f.first_ns
            if f.last_ns > a[4]:
                a[4] = f.last_ns
    return [
        Edge(
            src_device=k[0],
            dst_device=k[1],
            proto=k[2],
            port=k[3],
            flows=v[0],
            packets=v[1],
            bytes=v[2],
            first_ns=v[3],
            last_ns=v[4],
        )
        for k, v in sorted(acc.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], kv[0][3] or -1))
    ]
