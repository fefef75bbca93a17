"""The DSP 2025-1 HTTPS binding as FastAPI routes (catalog, negotiations, transfers)."""

from connector.dsp_http._body import MAX_DSP_BODY_BYTES, BodyError, read_json_body
from connector.dsp_http.router import dsp_router

__all__ = ["MAX_DSP_BODY_BYTES", "BodyError", "dsp_router", "read_json_body"]
