"""The connector's control plane: DSP messages in, state machines, store, outbox, messages out.

HTTP routes (``connector.dsp_http``, ``connector.management``) are thin: they authenticate,
parse and hand a checked message to :class:`ConnectorService`. The package's modules, one job
each:

* ``service`` - the parts wired together; what the HTTP layers hold;
* ``negotiation`` / ``transfer`` - the two DSP processes, both roles, received and started;
* ``flows`` - one :class:`TransferFlow` per transfer format (HTTP pull today);
* ``process`` - a step's :class:`~connector.control.process.Plan` and the one compare-and-set writer;
* ``outbox`` - delivery of what we owe peers, retried, surviving restarts;
* ``context`` - what both processes share and the checks every DSP step makes first;
* ``errors`` - refusals (to peers, to our own people) and answers.
"""

from connector.control.errors import DspError, DspReply, ServiceError
from connector.control.flows import AccessIssuer, PullFlow, TransferFlow
from connector.control.push import PUSH_FORMAT, PushDestination, PushFlow
from connector.control.service import ConnectorService
from connector.protocol.extensions import EXT_COMPUTE_SITE, EXT_CONSUMER_PROOF, EXT_JOB_ID, EXT_PURPOSE

__all__ = [
    "EXT_COMPUTE_SITE",
    "EXT_CONSUMER_PROOF",
    "EXT_JOB_ID",
    "EXT_PURPOSE",
    "PUSH_FORMAT",
    "AccessIssuer",
    "ConnectorService",
    "DspError",
    "DspReply",
    "PullFlow",
    "PushDestination",
    "PushFlow",
    "ServiceError",
    "TransferFlow",
]
