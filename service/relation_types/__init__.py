"""Relation types: the registry of aliases relations are typed by."""
