"""Fast SHACL validation of DCAT-AP records that gives pyshacl's results.

pyshacl is the reference (about 55 records a second with the DCAT-AP shapes); bulk ingest and
harvesting need thousands. :class:`FastValidator` compiles a shapes graph once into Python
closures and validates each record over plain-dict indexes, giving the same results (focus node,
path, constraint component, severity, value) — the tests compare the two on the official shapes,
our shapes, the official examples, the seed records and systematically broken records. A shapes
graph using anything not implemented here is validated by pyshacl instead (fail closed).

- :func:`validate_compact`: our profiles (``vocab.shacl``) on a record's compact form, the
  ingest path; :func:`validate_record` / :func:`validate_records` the same for rdflib graphs;
- :func:`reference_validate`: the same question answered by pyshacl;
- :class:`FastValidator`: any shapes graph plus background knowledge.
"""

from catalogue.validation._compile import Finding, RawResult
from catalogue.validation._errors import UnsupportedShapesError, ValidationEngineError
from catalogue.validation._explain import Explanation, explain
from catalogue.validation._records import (
    compile_seconds,
    profiles_of,
    reference_validate,
    validate_compact,
    validate_record,
    validate_records,
    validator_for,
)
from catalogue.validation._report import to_report
from catalogue.validation._validator import FastValidator

__all__ = [
    "Explanation",
    "FastValidator",
    "Finding",
    "RawResult",
    "UnsupportedShapesError",
    "ValidationEngineError",
    "compile_seconds",
    "explain",
    "profiles_of",
    "reference_validate",
    "to_report",
    "validate_compact",
    "validate_record",
    "validate_records",
    "validator_for",
]
