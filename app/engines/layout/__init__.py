"""The ``layout`` engine: the text map and the schema in, JSON out; no GPU and no model download."""

from app.engines.layout.engine import LayoutEngine

__all__ = ["LayoutEngine"]
