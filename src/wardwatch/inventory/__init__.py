"""Identity resolution, flows and the communication map."""

from wardwatch.inventory.commmap import MapEdges, build_edges
from wardwatch.inventory.devices import InventoryBuilder, Resolution
from wardwatch.inventory.flows import FlowTable, Timeouts
from wardwatch.inventory.oui import preload_registry

__all__ = ["FlowTable", "InventoryBuilder", "MapEdges", "Resolution", "Timeouts", "build_edges", "preload_registry"]
