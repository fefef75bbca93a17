"""Turning an OpenAPI operation into a real request against the running worlds.

``Targets`` knows, for each operation: which server answers it, which credential is valid for
it, which live ids may be put in its path (only where a hostile request cannot change state if
it were wrongly accepted), and which snapshot of state a rejected write must leave unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tests.robustness.hostile import Reply, http
from tests.robustness.routes import CATALOGUE, Operation
from tests.robustness.worlds import ASSET_ID, CatalogueWorld, ConnectorWorld

UNKNOWN_ID = "urn:uuid:00000000-0000-4000-8000-00000000dead"
UNKNOWN_VALUES = {"command": "explode", "name": "robustness-unknown"}


@dataclass
class Targets:
    catalogue: CatalogueWorld
    connectors: ConnectorWorld

    # ---- where ----------------------------------------------------------------------------------
    def base(self, op: Operation) -> str:
        return self.catalogue.url if op.app == CATALOGUE else self.connectors.provider.url

    def live_ids_allowed(self, op: Operation) -> bool:
        """Live ids only where a wrongly accepted hostile request still could not change state."""
        return (
            op.method == "GET"
            or (op.is_dsp and op.method == "POST")
            or (op.method == "PUT" and op.path.startswith("/catalogue/datasets/"))
            or op.path
            in ("/data/{transfer_id}/query", "/data/{transfer_id}/obligations/{obligation_id}/fulfil")
        )

    def live_ids(self, op: Operation) -> dict[str, str]:
        world = self.connectors
        values: dict[str, str] = {}
        for name in op.path_params:
            if name in ("record_id",) or (name == "name" and "/versions/" not in op.path):
                values[name] = self.catalogue.record_id
            elif name == "name":
                values[name] = "1"
            elif name == "dataset_id":
                values[name] = ASSET_ID
            elif name == "pid":
                negotiation = op.path.startswith("/dsp/negotiations")
                values[name] = world.provider_negotiation_pid if negotiation else world.provider_transfer_id
            elif name == "negotiation_id":
                values[name] = world.provider_negotiation_pid
            elif name == "agreement_id":
                values[name] = world.agreement_id
            elif name == "transfer_id":
                values[name] = world.provider_transfer_id
            elif name == "command":
                values[name] = "suspend"
            else:
                values[name] = UNKNOWN_ID
        return values

    def unknown_ids(self, op: Operation) -> dict[str, str]:
        return {name: UNKNOWN_VALUES.get(name, UNKNOWN_ID) for name in op.path_params}

    def ids(self, op: Operation) -> dict[str, str]:
        return self.live_ids(op) if self.live_ids_allowed(op) else self.unknown_ids(op)

    def url(self, op: Operation, ids: Mapping[str, str] | None = None, query: str = "") -> str:
        path = op.path
        for name, value in (ids if ids is not None else self.ids(op)).items():
            path = path.replace("{" + name + "}", quote(value, safe=":@"))
        return self.base(op) + path + (f"?{query}" if query else "")

    # ---- who ------------------------------------------------------------------------------------
    def auth(self, op: Operation, method: str, url: str) -> dict[str, str]:
        """A valid credential for this operation (fresh where it is single-use)."""
        if op.auth == "publisher":
            return self.catalogue.auth()
        if op.auth == "management":
            return {"Authorization": f"Bearer {self.connectors.provider.token}"}
        if op.auth == "dsp":
            return self.connectors.dsp_auth("provider")
        if op.auth == "dpop":
            return self.connectors.data_auth(method, url.split("?", 1)[0])
        return {}

    def json_type(self, op: Operation) -> str:
        """The JSON-ish media type the route takes (JSON-LD for records, JSON elsewhere)."""
        if op.path.startswith("/catalogue/datasets"):
            return "application/ld+json"
        if op.path == "/catalogue/sparql":
            return "application/sparql-query"
        return "application/json"

    def plausible_body(self, op: Operation) -> bytes:
        """A body the route would take from an authorised caller (so only the credential is wrong)."""
        if op.path.endswith("/query"):
            return b'{"sql": "SELECT meter FROM data"}'
        if op.path.endswith("/fulfil"):
            return b'{"evidence": "deleted on request"}'
        return b"{}"

    # ---- what must not change ----------------------------------------------------------------------
    def snapshot(self, op: Operation) -> Any:
        return self.catalogue.snapshot() if op.app == CATALOGUE else self.connectors.snapshot()

    # ---- send -----------------------------------------------------------------------------------------
    def send(
        self,
        op: Operation,
        *,
        ids: Mapping[str, str] | None = None,
        query: str = "",
        content: bytes | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        authenticated: bool = True,
    ) -> Reply:
        url = self.url(op, ids, query)
        sent: dict[str, str] = {}
        if authenticated:
            sent.update(self.auth(op, op.method, url))
        if content_type:
            sent["Content-Type"] = content_type
        sent.update(headers or {})
        return Reply.of(http().request(op.method, url, content=content, headers=sent))
