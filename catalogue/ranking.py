"""Relevance of a hit, cheap enough to compute for a bounded set of candidates.

Why not FTS5's ``bm25()``: it computes each query term's document frequency by reading the
term's whole posting list, once per query and per term, facet filters included (a facet value
is a term of the full-text expression), and costs tens of microseconds per row: at a million
records a word with two facet filters cost more than the whole search may. This score keeps
BM25's two main signals, at a cost bounded by the candidates:

* how rare a word is: BM25's inverse document frequency, its records counted up to a limit
  (past it a word is simply common; only queries of several words need it);
* where it occurs: in the title (weight 10), the keywords (5) or only the description (2), the
  column weights the index has always used; the full-text index says which candidates hold a
  word in which column (one query per word and column over the candidates' rowid range).

Term frequency and length normalisation are left out (titles are a line; a description
repeating a word says little more). Ties go to the record indexed first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

TITLE_WEIGHT = 10.0
KEYWORD_WEIGHT = 5.0
DESCRIPTION_WEIGHT = 2.0


def idf(documents: int, holding: int) -> float:
    """BM25's inverse document frequency (never negative)."""
    return math.log((documents - holding + 0.5) / (holding + 0.5) + 1.0)


def rank_by_columns(
    words: Sequence[str],
    weights: Mapping[str, float],
    candidates: Sequence[int],
    in_title: Mapping[str, set[int]],
    in_keywords: Mapping[str, set[int]],
    titled: set[int],
) -> list[int]:
    """Candidates most relevant first: each word's rarity times the weight of where it occurs.

    ``in_title`` / ``in_keywords``: per word, the candidates holding it in that column (as the
    full-text index answers); ``titled`` candidates hold every word in their title. A hit holds
    every word somewhere, so a word in neither title nor keywords is in the description.
    """

    def score(rowid: int) -> float:
        total = 0.0
        for word in words:
            if rowid in titled or rowid in in_title.get(word, ()):
                where = TITLE_WEIGHT
            elif rowid in in_keywords.get(word, ()):
                where = KEYWORD_WEIGHT
            else:
                where = DESCRIPTION_WEIGHT
            total += weights.get(word, 1.0) * where
        return total

    return [rowid for _, rowid in sorted((-score(rowid), rowid) for rowid in candidates)]
