"""The seed catalogue: real European health and energy datasets, described factually.

One dataset per Turtle file in this package (kept next to this module so that the package-data
rule for ``*.ttl`` ships them), with its distributions, publisher, contact point,
themes, licences, formats and coverage: national statistics offices, grid operators,
public-health institutes and Eurostat publish open data; the restricted health registers are
described as EHDS-style HealthDCAT-AP records naming their health data access body. Dataset
IRIs live under ``https://data.sluis.example/dataset/<slug>``; landing pages and access URLs are
the publishers' own. No figure (sizes, counts) is stated that the publisher does not state.

Used by the demo, the catalogue's tests and its benchmarks.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Final

DATASET_BASE: Final = "https://data.sluis.example/dataset/"


def seed_files() -> list[Path]:
    """The seed records' Turtle files, sorted by name."""
    folder = resources.files("catalogue.seed")
    return sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".ttl"))


def dataset_iri(path: Path) -> str:
    """The dataset IRI a seed file describes (its file name is the dataset's slug)."""
    return DATASET_BASE + path.stem


__all__ = ["DATASET_BASE", "dataset_iri", "seed_files"]
