"""The connector's token-protected management API (OpenAPI documented)."""

from connector.management._limits import MAX_MANAGEMENT_BODY_BYTES, BodySizeLimit
from connector.management.router import management_router

__all__ = ["MAX_MANAGEMENT_BODY_BYTES", "BodySizeLimit", "management_router"]
