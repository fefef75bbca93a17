"""The connector's token-protected management API (OpenAPI documented)."""

from connector.management.router import management_router

__all__ = ["management_router"]
