"""The Sluis test suite: real servers on loopback, real DuckDB, SQLite and PostgreSQL."""
