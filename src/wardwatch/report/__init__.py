"""Renderers: terminal tables, the JSON analysis document, CSV, GraphML and the single-file HTML report."""
