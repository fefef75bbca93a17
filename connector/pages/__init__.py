"""The connector's web pages: agreements, transfers, request access, offers, audit, register.

``install_pages(app, service, config)`` is the one line an application adds. It mounts the page
routers under ``/pages`` and lets the management API's listing URLs answer a browser with their
page (the same URL gives JSON to a client). Logging in takes the connector's operator token;
the transparency register is public.
"""

from __future__ import annotations

import re
from typing import Final

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from connector.audit import AuditLog
from connector.catalog import CatalogBuilder
from connector.config import ConnectorConfig
from connector.control import ConnectorService
from connector.identity import verification_method_id
from connector.management import BodySizeLimit
from connector.pages.compliance import compliance_router
from connector.pages.context import OPERATOR, ConnectorPages
from connector.pages.contracts import contracts_router
from connector.pages.offers import offers_router
from connector.pages.register import register_router
from connector.pages.register_store import RegisterChoices
from connector.pages.request_access import request_router
from connector.pages.sessions import same_token
from connector.pages.web import MAX_FORM_BYTES, PAGES, HtmlAlternates, PageKit

NAVIGATION: Final = (
    (f"{PAGES}/agreements", "Agreements"),
    (f"{PAGES}/transfers", "Transfers"),
    (f"{PAGES}/request", "Request access"),
    (f"{PAGES}/offers", "Offers"),
    (f"{PAGES}/audit", "Audit log"),
    (f"{PAGES}/policy-check", "Policy check"),
    (f"{PAGES}/lineage", "Lineage"),
    (f"{PAGES}/register", "Register"),
)
# Management API listings a browser is shown as pages.
ALTERNATES: Final = (
    (re.compile(r"/management/agreements"), f"{PAGES}/agreements"),
    (re.compile(r"/management/agreements/([^/]+)"), PAGES + r"/agreements/\1"),
    (re.compile(r"/management/negotiations"), f"{PAGES}/negotiations"),
    (re.compile(r"/management/negotiations/([^/]+)"), PAGES + r"/negotiations/\1"),
    (re.compile(r"/management/transfers"), f"{PAGES}/transfers"),
)


def install_pages(
    app: FastAPI, service: ConnectorService, config: ConnectorConfig, *, data_plane: bool
) -> None:
    """Mount the pages on ``app`` (reads and writes go through ``service`` and its store).

    ``data_plane`` says whether this connector serves data (and so keeps an audit log and counts
    reads); the pages read and write through the store's database (the one pool).
    """
    token = config.management.token

    def check_token(given: str) -> str | None:
        return OPERATOR if same_token(given, token) else None

    kit = PageKit(
        node_name=f"Sluis connector {config.server.public_url.split('//', 1)[-1]}",
        check_token=check_token,
        token_name="operator token",  # noqa: S106 - the name of the field, not a token
        kind="connector",
        public_url=config.server.public_url,
        navigation=NAVIGATION,
    )
    database = service.store.db
    audit = AuditLog(database) if data_plane else None
    reads = None
    if data_plane:
        from connector.dataplane.store import DataPlaneStore
        from connector.pages.reads import ReadCounts

        reads = ReadCounts(service.store, DataPlaneStore(database))
    participant = config.participant_id
    pages = ConnectorPages(
        kit,
        service,
        reads,
        audit,
        RegisterChoices(database),
        config.load_key(),
        verification_method_id(participant),
        service.ctx.resolver,  # the connector's own: trust list, address policy, limits
        CatalogBuilder(service.store, participant, f"{config.server.public_url.rstrip('/')}/dsp"),
        config.security.address_policy(),
    )
    home = APIRouter(prefix=PAGES, include_in_schema=False)

    @home.get("/")
    def start(request: Request) -> Response:
        return kit.render(request, "home.html", {"participant": service.participant_id})

    app.include_router(kit.router())
    app.include_router(home)
    for router in (contracts_router, request_router, offers_router, compliance_router, register_router):
        app.include_router(router(pages))
    app.add_middleware(BodySizeLimit, prefix=PAGES, max_bytes=MAX_FORM_BYTES)
    app.add_middleware(HtmlAlternates, routes=ALTERNATES)
    app.state.pages = pages
