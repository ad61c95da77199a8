"""A city day for clearing's benchmark: written into a fresh PostgreSQL database through the
product's own aggregates and applications, then cleared by the product in a process of its own
(`python -m loadtests.clearing_day --help`)."""
