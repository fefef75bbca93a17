"""Both DSP readers give the same message for every official DSP 2025-1 example.

``vocab.dsp.read_message`` keeps a message in the known compact form as it is and sends any
other form through JSON-LD (``read_message_naive``). The two must not disagree on what a
message says: a bare ``leftOperand: "purpose"`` or ``format: "HttpData-PULL"`` once came out of
JSON-LD resolved against the placeholder base (``https://dsp.invalid/purpose``), an operand the
policy engine does not know, so the same offer was understood on one path and denied on the
other.
"""

from __future__ import annotations

import json
from pathlib import Path

from vocab import dsp
from vocab.dsp import DspMessageError


def _read(reader: object, doc: object) -> dict[str, object] | None:
    assert callable(reader)
    try:
        body = reader(doc).body
    except DspMessageError:
        return None  # not a message (a DID service entry, the version document): both refuse
    assert isinstance(body, dict)
    return body


def test_the_fast_and_the_json_ld_reader_agree_on_every_official_example(conformance_dir: Path) -> None:
    examples = sorted((conformance_dir / "dsp" / "2025-1" / "examples").rglob("*.json"))
    read = 0
    for path in examples:
        doc = json.loads(path.read_text())
        fast = _read(dsp.read_message, doc)
        naive = _read(dsp.read_message_naive, doc)
        assert fast == naive, path.name
        read += fast is not None
    assert read >= 20  # the examples hold every message type; most are messages


def test_a_bare_odrl_operand_survives_the_json_ld_path() -> None:
    offer = {
        "@id": "urn:offer:1",
        "@type": "Offer",
        "target": "urn:ds",
        "permission": [
            {
                "action": "use",
                "constraint": [{"leftOperand": "purpose", "operator": "eq", "rightOperand": "x"}],
            }
        ],
    }
    compact = dsp.contract_request_message("urn:uuid:c", offer, callback_address="http://127.0.0.1/dsp")
    prefixed = {**compact, "@context": [*compact["@context"], {"ex": "https://example.org/"}]}
    assert not dsp.is_known_compact_form(prefixed)
    body = dsp.read_message(prefixed).body
    constraint = body["offer"]["permission"][0]["constraint"][0]
    assert constraint["leftOperand"] == "purpose"
