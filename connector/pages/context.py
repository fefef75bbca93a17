"""What the connector's page routers share: the page kit and the connector's parts they read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import FormData

from connector.addresses import AddressPolicy
from connector.audit import AuditLog
from connector.catalog import CatalogBuilder
from connector.control import ConnectorService
from connector.identity import KeyPair, PublicKeyResolver
from connector.pages.facts import ReadCounter
from connector.pages.negotiate import prefers_html
from connector.pages.register_store import RegisterChoices
from connector.pages.web import PageKit

OPERATOR = "operator"


@dataclass(frozen=True)
class ConnectorPages:
    kit: PageKit
    service: ConnectorService
    reads: ReadCounter | None
    audit: AuditLog | None
    register: RegisterChoices
    key: KeyPair
    verification_method: str
    resolver: PublicKeyResolver
    catalog: CatalogBuilder
    addresses: AddressPolicy

    @property
    def participant(self) -> str:
        participant: str = self.service.participant_id
        return participant

    def wants_page(self, request: Request) -> bool:
        return prefers_html(request.headers.get("accept"))

    def denied(self, request: Request) -> Response | None:
        """``None`` for the operator; a login redirect (browser) or a 401 problem (client) otherwise."""
        if self.kit.principal(request) == OPERATOR:
            return None
        if self.wants_page(request):
            return self.kit.login_redirect(request)
        return JSONResponse(
            {
                "type": "https://w3id.org/sluis/problems/unauthorized",
                "title": "Log in first",
                "status": 401,
                "detail": "send the operator token as a bearer token or log in on the login page",
            },
            status_code=401,
            media_type="application/problem+json",
        )

    async def posted(self, request: Request) -> FormData | Response:
        """A submitted form of the operator, or the answer that refuses it (login, expired form)."""
        if (refusal := self.denied(request)) is not None:
            return refusal
        form = await self.kit.form(request)
        if not self.kit.csrf_ok(request, form):
            return self.kit.form_expired(request)
        return form

    def answer(self, request: Request, template: str, context: dict[str, Any], data: Any) -> Response:
        """The page for a browser, ``data`` as JSON for a client: one URL, two forms."""
        if self.wants_page(request):
            return self.kit.render(request, template, context)
        return JSONResponse(data)
