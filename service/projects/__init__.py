"""Projects and their API keys (the tenancy the rest of the service is scoped by)."""
