"""The DSP 2025-1 HTTPS binding as FastAPI routes (catalog, negotiations, transfers)."""

from connector.dsp_http.fast_lane import DspFastLane
from connector.dsp_http.router import MAX_DSP_BODY_BYTES, dsp_error_response, dsp_router

__all__ = ["MAX_DSP_BODY_BYTES", "DspFastLane", "dsp_error_response", "dsp_router"]
