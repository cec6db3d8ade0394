"""Bulk export and import of a project's relation types and relations (SPEC §11)."""
