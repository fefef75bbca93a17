"""The catalogue past one node: the SPARQL-endpoint record store (on a real Virtuoso), the
PostgreSQL search index shared by replicas, two catalogue processes on one store and index, and
migration between the embedded and the shared deployment."""
