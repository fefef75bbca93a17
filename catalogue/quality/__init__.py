"""Metadata quality of DCAT-AP records, compatible with data.europa.eu's MQA, plus trust.

:func:`assess_compact` (the ingest path, on a record's compact form) and :func:`assess` (an
rdflib graph) score a dataset on the MQA's five dimensions (findability, accessibility,
interoperability, reusability, contextuality; 405 points; bands excellent / good / sufficient /
bad) without any network I/O, and adds our trust indicators (signed, publisher verified,
HealthDCAT-AP tier complete). :meth:`QualityAssessment.to_dqv` writes it as W3C DQV.
"""

from catalogue.quality._assess import (
    TRUST_INDICATORS,
    IndicatorScore,
    QualityAssessment,
    assess,
    assess_compact,
    health_tier_complete,
    tier_complete,
)
from catalogue.quality._ehds import MINIMUM_ELEMENTS, minimum_elements, minimum_elements_of
from catalogue.quality._methodology import (
    BANDS,
    DIMENSION_MAXIMUM,
    DIMENSIONS,
    INDICATORS,
    MAXIMUM_POINTS,
    Indicator,
    band_for,
)

__all__ = [
    "BANDS",
    "DIMENSIONS",
    "DIMENSION_MAXIMUM",
    "INDICATORS",
    "MAXIMUM_POINTS",
    "MINIMUM_ELEMENTS",
    "TRUST_INDICATORS",
    "Indicator",
    "IndicatorScore",
    "QualityAssessment",
    "assess",
    "assess_compact",
    "band_for",
    "health_tier_complete",
    "minimum_elements",
    "minimum_elements_of",
    "tier_complete",
]
