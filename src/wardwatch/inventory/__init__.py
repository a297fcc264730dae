"""Identity resolution, flows and the communication map."""

from wardwatch.inventory.commmap import build_edges
from wardwatch.inventory.devices import InventoryBuilder, Resolution
from wardwatch.inventory.flows import FlowTable, Timeouts

__all__ = ["FlowTable", "InventoryBuilder", "Resolution", "Timeouts", "build_edges"]
