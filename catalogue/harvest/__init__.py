"""Federation: harvesting other catalogues into this node, with provenance, trust and limits.

Sources are DCAT-AP endpoints with Hydra paging (other Sluis nodes, CKAN and piveau DCAT
endpoints), plain catalogue dumps in any RDF syntax (also behind a static file server's
directory listing) and connectors' DSP catalogs (a ``CatalogRequestMessage`` signed as this
node). Each run is a pure state machine (:mod:`._machine`) driven by :mod:`._run`; the
:class:`~catalogue.harvest.ledger.Ledger` keeps sources, runs and the origin of every harvested
record; :mod:`.config` reads the node's TOML file (identity, sources, trusted keys, limits);
:mod:`.routes` is the sources API.
"""

from catalogue.harvest._fetch import Fetcher, FetchError, FetchLimits
from catalogue.harvest._machine import RunEvent, RunState, step
from catalogue.harvest._run import Harvester, HarvestError
from catalogue.harvest._trust import TRUST_QUARANTINED, Verdict, judge
from catalogue.harvest.config import (
    NODE_CONFIG_FILE,
    ConfigError,
    HarvestLimits,
    NodeSettings,
    load_settings,
    parse_source,
    token_digest,
)
from catalogue.harvest.federation import Federation, settings_for
from catalogue.harvest.ledger import LEDGER_FILE, Ledger, Run, Source

__all__ = [
    "LEDGER_FILE",
    "NODE_CONFIG_FILE",
    "TRUST_QUARANTINED",
    "ConfigError",
    "Federation",
    "FetchError",
    "FetchLimits",
    "Fetcher",
    "HarvestError",
    "HarvestLimits",
    "Harvester",
    "Ledger",
    "NodeSettings",
    "Run",
    "RunEvent",
    "RunState",
    "Source",
    "Verdict",
    "judge",
    "load_settings",
    "parse_source",
    "settings_for",
    "step",
    "token_digest",
]
