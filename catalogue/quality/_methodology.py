"""The Metadata Quality Assessment methodology of data.europa.eu, as data.

Facts from the published methodology: five dimensions derived from FAIR, each indicator with its
weight (the weights add up to 405), and four rating bands. Only these numbers and names come
from the methodology; how each indicator is judged here (offline, on one record) is ours and is
documented next to each indicator and in ``docs/quality.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Indicator:
    """One MQA indicator: its key, dimension, weight and what we check."""

    key: str
    dimension: str
    weight: int
    label: str
    checks: str
    offline_proxy: bool = False


FINDABILITY: Final = "findability"
ACCESSIBILITY: Final = "accessibility"
INTEROPERABILITY: Final = "interoperability"
REUSABILITY: Final = "reusability"
CONTEXTUALITY: Final = "contextuality"
DIMENSIONS: Final = (FINDABILITY, ACCESSIBILITY, INTEROPERABILITY, REUSABILITY, CONTEXTUALITY)

INDICATORS: Final[tuple[Indicator, ...]] = (
    Indicator("keywordUsage", FINDABILITY, 30, "Keyword usage", "the dataset has dcat:keyword"),
    Indicator("categories", FINDABILITY, 30, "Categories", "the dataset has dcat:theme"),
    Indicator("geoSearch", FINDABILITY, 20, "Geo search", "the dataset has dct:spatial"),
    Indicator("timeBasedSearch", FINDABILITY, 20, "Time-based search", "the dataset has dct:temporal"),
    Indicator(
        "accessUrlAccessibility", ACCESSIBILITY, 50, "AccessURL accessibility",
        "share of distributions whose dcat:accessURL is an absolute http(s) URL with a public host "
        "(judged offline: no request is made)",
        offline_proxy=True,
    ),
    Indicator(
        "downloadUrl", ACCESSIBILITY, 20, "DownloadURL", "share of distributions with dcat:downloadURL"
    ),
    Indicator(
        "downloadUrlAccessibility", ACCESSIBILITY, 30, "DownloadURL accessibility",
        "share of distributions whose dcat:downloadURL is an absolute http(s) URL with a public host "
        "(judged offline: no request is made)",
        offline_proxy=True,
    ),
    Indicator("format", INTEROPERABILITY, 20, "Format", "share of distributions with dct:format"),
    Indicator("mediaType", INTEROPERABILITY, 10, "Media type", "share of distributions with dcat:mediaType"),
    Indicator(
        "formatMediaTypeVocabulary", INTEROPERABILITY, 10, "Format / media type from vocabulary",
        "share of distributions whose format is in the EU file-type table or media type is an IANA IRI",
    ),
    Indicator(
        "nonProprietary", INTEROPERABILITY, 20, "Non-proprietary",
        "share of distributions whose format is an open, non-proprietary file type",
    ),
    Indicator(
        "machineReadable", INTEROPERABILITY, 20, "Machine readable",
        "share of distributions whose format is machine-readable",
    ),
    Indicator(
        "dcatApCompliance", INTEROPERABILITY, 30, "DCAT-AP compliance",
        "the record has no SHACL violation against its profiles",
    ),
    Indicator(
        "licenceInformation", REUSABILITY, 20, "Licence information",
        "share of distributions with dct:license",
    ),
    Indicator(
        "licenceVocabulary", REUSABILITY, 10, "Licence vocabulary",
        "share of distributions whose licence is in the EU licence table",
    ),
    Indicator(
        "accessRestrictions", REUSABILITY, 10, "Access restrictions", "the dataset has dct:accessRights"
    ),
    Indicator(
        "accessRestrictionsVocabulary", REUSABILITY, 5, "Access restrictions vocabulary",
        "the dataset's access rights are in the EU access-right table",
    ),
    Indicator("contactPoint", REUSABILITY, 20, "Contact point", "the dataset has dcat:contactPoint"),
    Indicator("publisher", REUSABILITY, 10, "Publisher", "the dataset has dct:publisher"),
    Indicator("rights", CONTEXTUALITY, 5, "Rights", "share of distributions with dct:rights"),
    Indicator("fileSize", CONTEXTUALITY, 5, "File size", "share of distributions with dcat:byteSize"),
    Indicator(
        "dateOfIssue", CONTEXTUALITY, 5, "Date of issue",
        "share of distributions with dct:issued (the dataset's own counts for all)",
    ),
    Indicator(
        "modificationDate", CONTEXTUALITY, 5, "Modification date",
        "share of distributions with dct:modified (the dataset's own counts for all)",
    ),
)  # fmt: skip

MAXIMUM_POINTS: Final = sum(i.weight for i in INDICATORS)
DIMENSION_MAXIMUM: Final = {d: sum(i.weight for i in INDICATORS if i.dimension == d) for d in DIMENSIONS}

# Rating bands: the lowest total that earns each band (MQA: 351-405, 221-350, 121-220, 0-120).
BANDS: Final = (("excellent", 351), ("good", 221), ("sufficient", 121), ("bad", 0))


def band_for(total: int) -> str:
    """The MQA rating band of a total score."""
    for name, lowest in BANDS:
        if total >= lowest:
            return name
    return "bad"
