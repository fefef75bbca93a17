"""DSP 2025-1 message types: builders, our own schema checks, and the compact-form fast path.

Build outgoing messages with the ``*_message`` functions; read incoming ones with
:func:`read_message`, which skips JSON-LD processing for the known compact form and falls back
to the offline JSON-LD processor for anything else.
"""

from vocab.dsp._builders import (
    HTTP_ENDPOINT_TYPE,
    agreement_verification_message,
    catalog,
    catalog_error,
    catalog_request_message,
    contract_agreement_message,
    contract_negotiation,
    contract_offer_message,
    contract_request_message,
    data_address,
    data_address_properties,
    dataset,
    dataset_request_message,
    negotiation_error,
    negotiation_event_message,
    negotiation_termination_message,
    transfer_completion_message,
    transfer_error,
    transfer_process,
    transfer_request_message,
    transfer_start_message,
    transfer_suspension_message,
    transfer_termination_message,
)
from vocab.dsp._recognise import (
    MAX_MESSAGE_DEPTH,
    DspMessage,
    DspMessageError,
    check_message,
    is_known_compact_form,
    read_message,
    read_message_naive,
    to_compact_form,
)
from vocab.dsp._schemas import DSP_CONTEXT_URL, MESSAGE_SCHEMAS

__all__ = [
    "DSP_CONTEXT_URL",
    "HTTP_ENDPOINT_TYPE",
    "MAX_MESSAGE_DEPTH",
    "MESSAGE_SCHEMAS",
    "DspMessage",
    "DspMessageError",
    "agreement_verification_message",
    "catalog",
    "catalog_error",
    "catalog_request_message",
    "check_message",
    "contract_agreement_message",
    "contract_negotiation",
    "contract_offer_message",
    "contract_request_message",
    "data_address",
    "data_address_properties",
    "dataset",
    "dataset_request_message",
    "is_known_compact_form",
    "negotiation_error",
    "negotiation_event_message",
    "negotiation_termination_message",
    "read_message",
    "read_message_naive",
    "to_compact_form",
    "transfer_completion_message",
    "transfer_error",
    "transfer_process",
    "transfer_request_message",
    "transfer_start_message",
    "transfer_suspension_message",
    "transfer_termination_message",
]
