"""Paging for every management listing: ``limit``/``offset``/``q`` in, a JSON list plus headers out.

A listing stays a plain JSON array (what existing clients read); how many items match in all
is in ``X-Total-Count`` and the neighbouring pages are ``Link`` headers (RFC 8288, ``next`` and
``prev``), so a client pages without guessing. Every listing is bounded: at most
:data:`MAX_PAGE` items per request, :data:`DEFAULT_PAGE` when the client does not say.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response

#: Items per page when the client does not ask, and the most it may ask for.
DEFAULT_PAGE = 100
MAX_PAGE = 1000
#: Deepest offset accepted (a bound, not a product limit: filter instead of paging that far).
MAX_OFFSET = 10_000_000
#: Longest search text (matched as a substring of ids, and of titles for assets).
MAX_SEARCH_CHARS = 200


@dataclass(frozen=True)
class Paging:
    limit: int
    offset: int
    q: str | None


def paging(
    limit: int = Query(DEFAULT_PAGE, ge=1, le=MAX_PAGE, description="items per page"),
    offset: int = Query(0, ge=0, le=MAX_OFFSET, description="items to skip"),
    q: str | None = Query(None, min_length=1, max_length=MAX_SEARCH_CHARS, description="id contains"),
) -> Paging:
    """The paging query parameters of a listing (a FastAPI dependency)."""
    return Paging(limit, offset, q)


def paged(items: list[Any], total: int, page: Paging, request: Request, response: Response) -> list[Any]:
    """``items`` as the body; the total and the links to the next and previous pages as headers."""
    response.headers["X-Total-Count"] = str(total)
    links = []
    if page.offset + len(items) < total:
        links.append(f'<{request.url.include_query_params(offset=page.offset + page.limit)}>; rel="next"')
    if page.offset > 0:
        previous = request.url.include_query_params(offset=max(0, page.offset - page.limit))
        links.append(f'<{previous}>; rel="prev"')
    if links:
        response.headers["Link"] = ", ".join(links)
    return items


#: The paging parameters as a route parameter type.
PageQuery = Annotated[Paging, Depends(paging)]
