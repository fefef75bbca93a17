"""The Sluis catalogue node: DCAT-AP 3 / HealthDCAT-AP records published by data providers,
validated (SHACL), scored for quality (MQA-compatible DQV), signed, stored in Oxigraph, indexed
for ranked full text and facets, and served over HTTP (records, Hydra-paged catalog, search,
read-only SPARQL).

- ``catalogue.validation``: fast SHACL validation that agrees with pyshacl;
- ``catalogue.quality``: quality scores and trust indicators;
- ``catalogue.publish``: the all-or-nothing publish pipeline;
- ``catalogue.store`` / ``catalogue.index``: the system of record and the search index;
- ``catalogue.api``: the HTTP API; ``catalogue.seed``: the seed catalogue.
"""
