"""Relations: typed parent→child edges, the Heartcore-compatible core of the service."""
