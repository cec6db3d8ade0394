"""Ordered child lists (service/child_lists)."""
