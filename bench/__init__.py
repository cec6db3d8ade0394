"""`make bench`: seed a PostgreSQL database, run the service and a bare handler under the same HTTP load,
print one table (see `python -m bench --help`)."""
