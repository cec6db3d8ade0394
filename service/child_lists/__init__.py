"""Ordered child lists (SPEC §6): the children of one parent under one relation type, edited the ways of
Strapi (connect/disconnect/set), Backendless (`name:Type:1|n` aliases, set/add) and JSON:API."""
