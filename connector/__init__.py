"""The Sluis data-space connector.

Provider and consumer roles of the Eclipse Dataspace Protocol 2025-1 in one service:

- ``connector.identity``: participant keys, did:web documents, self-issued tokens, verifiable
  credentials and Data Integrity (``eddsa-jcs-2022``) proofs;
- ``connector.protocol``: contract negotiation and transfer process as pure transition tables;
- ``connector.database``: the one database layer (SQLite by default, PostgreSQL for several
  replicas): pool, transactions, rows and the numbered migrations of every table;
- ``connector.store``: the control plane's records (compare-and-set processes, outbox, agreements);
- ``connector.dsp_http`` / ``connector.dsp_client``: the HTTPS binding, both directions;
- ``connector.management``: the token-protected management API;
- ``connector.dataplane``: token- and policy-checked DuckDB reads, at every read;
- ``connector.audit``: the signed, hash-chained audit log;
- ``connector.jobs``: the client an AI job imports to find, negotiate and read data.

Policy decisions are never taken here: the connector asks ``policies`` with verified claims.
"""
