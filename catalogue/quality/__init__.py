"""Metadata quality of DCAT-AP records, compatible with data.europa.eu's MQA, plus trust.

:func:`assess` scores a dataset on the MQA's five dimensions (findability, accessibility,
interoperability, reusability, contextuality; 405 points; bands excellent / good / sufficient /
bad) without any network I/O, and adds our trust indicators (signed, publisher verified,
HealthDCAT-AP tier complete). :meth:`QualityAssessment.to_dqv` writes it as W3C DQV.
"""

from catalogue.quality._assess import (
    TRUST_INDICATORS,
    IndicatorScore,
    QualityAssessment,
    assess,
    health_tier_complete,
)
from catalogue.quality._ehds import MINIMUM_ELEMENTS, minimum_elements
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
    "band_for",
    "health_tier_complete",
    "minimum_elements",
]
