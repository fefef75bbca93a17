"""Does this request want a page? Answered by the shared HTTP layer's negotiation.

Browsers ask for ``text/html`` first; API clients ask for JSON, RDF or nothing at all. The same
URL answers both: HTML when the ``Accept`` header ranks ``text/html`` (or
``application/xhtml+xml``) strictly above every machine format it lists, the machine form
otherwise. A missing header or ``*/*`` alone means a client, not a person.
"""

from __future__ import annotations

from connector.http import prefers_html

__all__ = ["prefers_html"]
