"""What live monitoring reports as it happens (events) and about itself (sensor status)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from wardwatch.model.inventory import DeviceId


class EventKind(StrEnum):
    """Kinds of live events (the ``kind`` field of ``wardwatch events`` lines)."""

    NEW_DEVICE = "new-device"
    """A device the store had never seen."""
    IDENTITY_CHANGED = "identity-changed"
    """A known device's vendor, model, type, firmware or OS changed (``detail``: before and after)."""
    NEW_PATH = "new-path"
    """A communication path (initiator device, responder device, service) that is not in the baseline."""
    DEVICE_SILENT = "device-silent"
    """A device seen while monitoring sent nothing for the silence threshold."""
    DEVICE_BACK = "device-back"
    """A device reported silent was seen again."""
    CAPTURE_LOSS = "capture-loss"
    """The kernel dropped frames (the ring was full): they were not analysed."""
    INTERFACE_LOST = "interface-lost"
    """A monitored interface went away or failed; capture resumes when it is back."""
    INTERFACE_BACK = "interface-back"
    """A lost interface is captured from again."""
    SENSOR_FAULT = "sensor-fault"
    """The sensor could not do part of its work (write raw captures, a store write failed and was redone)."""


#: How bad each kind is, for syslog/CEF severities (0 lowest … 10 highest, as CEF counts).
SEVERITY = {
    EventKind.NEW_DEVICE: 5,
    EventKind.IDENTITY_CHANGED: 6,
    EventKind.NEW_PATH: 5,
    EventKind.DEVICE_SILENT: 4,
    EventKind.DEVICE_BACK: 2,
    EventKind.CAPTURE_LOSS: 7,
    EventKind.INTERFACE_LOST: 8,
    EventKind.INTERFACE_BACK: 3,
    EventKind.SENSOR_FAULT: 7,
}


@dataclass(frozen=True, slots=True)
class Event:
    """One live event."""

    kind: EventKind
    ts_ns: int
    """When it happened (the time of the packets that showed it, or the sensor's clock)."""
    summary: str
    """One line for people."""
    device: DeviceId | None = None
    peer: DeviceId | None = None
    """The responder of a new path."""
    service: str | None = None
    """``tcp/104`` for a new path."""
    detail: tuple[tuple[str, str], ...] = ()
    """Further fields (``vendor``: ``"old -> new"`` for an identity change, counts for a loss)."""
    sensor: str = ""
    """The sensor (host and interfaces) that saw it."""
    id: int = 0
    """Position in the store's event log (0 until stored); ``wardwatch events --after`` continues from it."""


@dataclass(frozen=True, slots=True)
class InterfaceStatus:
    """The operational figures of one monitored interface (``wardwatch status``)."""

    interface: str
    sensor: str
    state: str
    """``capturing``, ``lost`` (gone or failing, retried), ``stopped`` (the monitor ended)."""
    started_ns: int
    updated_ns: int
    packets: int
    """Frames analysed."""
    bytes: int
    kernel_packets: int
    """Frames the kernel passed to the ring (drops included)."""
    drops: int
    """Frames the kernel dropped (ring full): lost to the analysis, also counted in ``skipped``."""
    outgoing: int
    """Frames this host sent on the interface: 0 on a silent sensor."""
    queue_blocks: int
    """Ring blocks that were waiting at the last read (of ``ring_blocks``)."""
    ring_blocks: int
    backlog: int
    """Batches copied out of the ring and waiting to be analysed (the sensor's own queue)."""
    packets_per_s: float
    """Analysed frames per second over the last status interval."""
    bytes_per_s: float
    message: str = ""
    """Why the interface is ``lost``, or what the silence check found."""
