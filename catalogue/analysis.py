"""Getting a process ready to run the analysis stages (normalise, validate, score) at full speed.

Each stage keeps what it reads once per process: the compiled shapes of every profile
combination with the vocabularies indexed (``catalogue.validation.validator_for``), the EU
tables and the vocabulary facts normalisation and quality look up. They are built on first use;
a worker process of the ingest pool calls :func:`warm_up` once when it starts, so no record
pays for them and no worker's first batch is slow. After warm-up the stages only read this
state (the compiled checks' literal caches are bounded and give the same answers whatever
they hold), so any number of workers can run them side by side.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from catalogue.ingest.compact import RDF_TYPE, CompactRecord
from catalogue.normalise import normalise_compact
from catalogue.quality import assess_compact
from catalogue.validation import validate_compact, validator_for
from vocab.shacl import Profile

# Every profile combination ``profiles_of`` can choose: DCAT-AP, with or without HVD, with or
# without one health tier.
PROFILE_SETS: Final[tuple[tuple[Profile, ...], ...]] = tuple(
    (Profile.DCAT_AP, *hvd, *tier)
    for hvd in ((), (Profile.HVD,))
    for tier in ((), (Profile.HEALTH_PUBLIC,), (Profile.HEALTH_RESTRICTED,), (Profile.HEALTH_NON_PUBLIC,))
)
_PROBE: Final = CompactRecord(
    [
        ("<urn:sluis:warm-up>", RDF_TYPE, "<http://www.w3.org/ns/dcat#Dataset>"),
        ("<urn:sluis:warm-up>", "<http://purl.org/dc/terms/language>", '"en"'),
    ]
)


def warm_up(profile_sets: Iterable[Iterable[Profile]] = PROFILE_SETS) -> None:
    """Build this process's validators and load the tables every stage reads (idempotent)."""
    for profiles in profile_sets:
        chosen = list(profiles)
        validator_for(chosen)
        # Quality's "health tier complete" validates against the tier's shapes alone.
        tiers = [p for p in chosen if p not in (Profile.DCAT_AP, Profile.HVD)]
        if tiers:
            validator_for(tiers)
    record, _ = normalise_compact(_PROBE, skolem_base="urn:sluis:warm-up")
    report = validate_compact(record)
    assess_compact(record, "<urn:sluis:warm-up>", report, signed=False, publisher_verified=False)
