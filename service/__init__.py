"""Relation registry: typed, ordered parent-child relations between GUID-identified entities."""
