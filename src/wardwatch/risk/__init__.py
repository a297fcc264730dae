"""Risk findings: rules over the resolved inventory and map (``base/``: always on)."""

from wardwatch.risk.base import default_rules
from wardwatch.risk.interface import RiskContext, Rule, evaluate

__all__ = ["RiskContext", "Rule", "default_rules", "evaluate"]
