"""The catalogue node's web pages: search, dataset, request access, publish, my datasets.

``install_catalogue_pages(app, node)`` is the one line the catalogue app adds. It mounts the
pages under ``/pages`` and lets ``/catalogue/search`` and ``/catalogue/datasets/{id}`` answer a
browser with their pages (the same URLs give JSON and RDF to clients). Reading is public, as
the catalogue's API reads are; publishing takes a publisher token.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Final

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from catalogue.pages.browse import browse_router
from catalogue.pages.publishing import publishing_router
from connector.management import BodySizeLimit
from connector.pages.web import MAX_FORM_BYTES, PAGES, HtmlAlternates, PageKit

if TYPE_CHECKING:
    from catalogue.api import CatalogueNode

NAVIGATION: Final = (
    (f"{PAGES}/catalogue/search", "Search"),
    (f"{PAGES}/catalogue/publish", "Publish"),
    (f"{PAGES}/catalogue/mine", "My datasets"),
)
ALTERNATES: Final = (
    (re.compile(r"/catalogue/search"), f"{PAGES}/catalogue/search"),
    (re.compile(r"/catalogue/datasets/([A-Za-z0-9_-]{1,64})"), PAGES + r"/catalogue/datasets/\1"),
    (re.compile(r"/"), f"{PAGES}/"),
)


def install_catalogue_pages(app: FastAPI, node: CatalogueNode) -> None:
    kit = PageKit(
        node_name=node.config.title,
        check_token=node.tokens.publisher_for,
        token_name="publisher token",  # noqa: S106 - the name of the field, not a token
        kind="catalogue",
        public_url=node.config.public_url,
        template_dirs=(Path(str(resources.files("catalogue.pages").joinpath("templates"))),),
        navigation=NAVIGATION,
    )
    home = APIRouter(prefix=PAGES, include_in_schema=False)

    @home.get("/")
    def start(request: Request) -> Response:
        return kit.render(request, "catalogue_home.html", {"records": node.index.count()})

    app.include_router(kit.router())
    app.include_router(home)
    app.include_router(browse_router(kit, node))
    app.include_router(publishing_router(kit, node))
    # an upload is one record (the node's document limit) plus the form around it
    app.add_middleware(BodySizeLimit, prefix=PAGES, max_bytes=node.config.max_body_bytes + MAX_FORM_BYTES)
    app.add_middleware(HtmlAlternates, routes=ALTERNATES)
