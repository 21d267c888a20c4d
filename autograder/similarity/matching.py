"""Find who shares code: an inverted index of fingerprints, pair scores, spans, clusters.

TRUSTED, in the grading parent; pure computation on fingerprints.

**Candidates come from an inverted index**, not from comparing every pair: each
fingerprint maps to the submissions that have it, and only submissions that
share a fingerprint are ever looked at together. The work grows with the number
of shared fingerprints, not with the square of the class.

**Common code is not evidence.** A fingerprint found in more than
``common_share`` of the class's submissions (and in more than
``COMMON_MIN_SUBMISSIONS``) is code that many students write alike (there are
only so many ways to write ``np.where(inputs > 0, inputs, 0.)``); when
submissions are compared with each other it is left out like the release's
code: it neither links a pair nor counts in the share of code a pair covers. It
still counts against known sources, so a class that copies the published
solution en masse is still seen there.

**Scores weigh how much student-written code a match covers.** A shared
fingerprint covers the ``k`` tokens of its k-gram, in each of the two
submissions. For a pair, ``a_fraction`` and ``b_fraction`` are the shares of each
side's comparable student-written tokens that are covered (comparable: covered
by the side's own fingerprints that are not common; a method shorter than ``k``
tokens can match nothing and counts for nothing), and ``score`` is the share of
both together, ``(covered_a + covered_b) / (tokens_a + tokens_b)``, in [0, 1]: 1
for two identical submissions, about 0.67 when one copied all of the other and
wrote as much again. For a known source the score is ``a_fraction``, the share
of the student's code found in the source (a source usually holds more than
one student's part).

**Short matches do not count by themselves.** A match whose covered code is
fewer than ``min_tokens`` normalised tokens on either side is *too short to mean
anything*: it is still listed (with a note that says so) but it never links two
submissions into a cluster. Clusters are the connected groups of submissions
linked by meaningful pairs at or above the threshold.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from autograder.similarity.fingerprints import DEFAULT_K, DEFAULT_WINDOW, kgram_hashes, winnow
from autograder.similarity.written import WrittenCode

__all__ = ['Document', 'Match', 'Region', 'Result', 'Settings', 'clusters', 'fingerprint', 'find_matches']

#: A fingerprint is common only when more submissions than this share it, whatever the share.
COMMON_MIN_SUBMISSIONS = 5

#: Default share of the class above which a fingerprint is common code.
DEFAULT_COMMON_SHARE = 0.1

#: Default similarity score at or above which a pair is reported. On generated
#: classes of 60 to 500 (``tests/similarity_class.py``) disguised copies scored
#: about 0.85 and above and independent students at most 0.51; 0.6 keeps a margin
#: on both sides. Lower it to see more (the pages show the evidence either way).
DEFAULT_THRESHOLD = 0.6

#: Default least covered tokens (on each side) for a match to mean something:
#: about four lines of exercise code. The whole lab 3 solution is 31 tokens.
DEFAULT_MIN_TOKENS = 40

#: Positions of one fingerprint used per document (repeated code repeats hashes).
_MAX_REPEATS = 4


@dataclass(frozen=True)
class Settings:
    """Parameters of a comparison (all reported in ``similarity.json``)."""

    threshold: float = DEFAULT_THRESHOLD
    min_tokens: int = DEFAULT_MIN_TOKENS
    k: int = DEFAULT_K
    window: int = DEFAULT_WINDOW
    common_share: float = DEFAULT_COMMON_SHARE


@dataclass
class Document:
    """A submission or known source, ready to compare.

    Attributes:
        name: Student id (as in the grade directory) or the known source's name.
        path: The file it came from, as given.
        code: Its student-written code.
        fingerprints: Winnowed hash -> token positions of its k-grams.
        segment_of: For each token, the index of its segment.
        comparable: Tokens covered by its own fingerprints: the code that can match
            at all (a method shorter than ``k`` tokens cannot), the denominator of
            its scores, so that two identical submissions score 1.
    """

    name: str
    path: str
    code: WrittenCode
    fingerprints: dict[int, list[int]] = field(default_factory=dict)
    segment_of: list[int] = field(default_factory=list)

    comparable: int = 0

    @property
    def tokens(self) -> int:
        return len(self.code.tokens)


@dataclass(frozen=True)
class Region:
    """A stretch of code found in both documents: token ranges ``[start, end)``."""

    a_start: int
    a_end: int
    b_start: int
    b_end: int


@dataclass
class Match:
    """Two documents that share code (b is a known source for known matches)."""

    a: str
    b: str
    score: float
    a_fraction: float
    b_fraction: float
    a_covered: frozenset[int]
    b_covered: frozenset[int]
    regions: list[Region]
    min_tokens: int
    distinctive_tokens: int | None = None
    a_tokens: int = 0
    b_tokens: int = 0

    @property
    def matched_tokens(self) -> int:
        """Covered tokens on the side with fewer: what the match is worth."""
        return min(len(self.a_covered), len(self.b_covered))

    @property
    def meaningful(self) -> bool:
        return self.matched_tokens >= self.min_tokens

    @property
    def note(self) -> str:
        if not self.meaningful:
            return ('too short to mean anything: the shared code is {0} normalised tokens, fewer '
                    'than the {1} a match needs (short methods are often written alike '
                    'independently)'.format(self.matched_tokens, self.min_tokens))
        if self.distinctive_tokens is not None and self.distinctive_tokens < self.min_tokens:
            return ('most of the shared code is also written alike by many others in the class '
                    '({0} tokens are not)'.format(self.distinctive_tokens))
        return ''


@dataclass
class Result:
    """Everything found: pairs of submissions, matches with known sources, parameters."""

    settings: Settings
    pairs: list[Match]
    known: list[Match]
    common_fingerprints: int
    common_cutoff: int
    candidate_pairs: int


def fingerprint(name: str, path: str, code: WrittenCode, settings: Settings) -> Document:
    """A :class:`Document` with the winnowed fingerprints of ``code``."""
    selected = winnow(kgram_hashes(code.tokens, code.segments, settings.k), settings.window)
    positions: dict[int, list[int]] = defaultdict(list)
    for value, position in selected:
        positions[value].append(position)
    segment_of = [0] * len(code.tokens)
    for index, (start, end) in enumerate(code.segments):
        segment_of[start:end] = [index] * (end - start)
    document = Document(name, path, code, dict(positions), segment_of)
    document.comparable = len(_covered(document, list(document.fingerprints), settings.k))
    return document


def find_matches(students: Sequence[Document], known: Sequence[Document], settings: Settings) -> Result:
    """Pairs of submissions and known-source matches at or above the threshold.

    Args:
        students: The class's submissions (names unique).
        known: Known sources (the model solution, last year's, ...).
        settings: The parameters.

    Returns:
        The :class:`Result`; pairs and known matches sorted by score, highest first.
    """
    cutoff = max(COMMON_MIN_SUBMISSIONS, math.ceil(settings.common_share * len(students)))
    index: dict[int, list[int]] = defaultdict(list)
    for number, document in enumerate(students):
        for value in document.fingerprints:
            index[value].append(number)
    common = {value for value, holders in index.items() if len(holders) > cutoff}
    shared: dict[tuple[int, int], list[int]] = defaultdict(list)
    for value, holders in index.items():
        if value in common or len(holders) < 2:
            continue
        for first in range(len(holders)):
            for second in range(first + 1, len(holders)):
                shared[holders[first], holders[second]].append(value)
    distinctive = [len(_covered(document, [value for value in document.fingerprints if value not in common],
                                settings.k)) for document in students]
    pairs = []
    for (first, second), values in shared.items():
        # Each shared fingerprint covers at most k tokens a side: skip pairs that cannot reach it.
        both = distinctive[first] + distinctive[second]
        if not both or 2 * settings.k * len(values) < settings.threshold * both:
            continue
        match = _compare(students[first], students[second], values, settings,
                         distinctive[first], distinctive[second])
        if match is not None:
            pairs.append(match)

    known_index: dict[int, list[int]] = defaultdict(list)
    for number, document in enumerate(known):
        for value in document.fingerprints:
            known_index[value].append(number)
    known_shared: dict[tuple[int, int], list[int]] = defaultdict(list)
    for number, document in enumerate(students):
        for value in document.fingerprints:
            for source in known_index.get(value, ()):
                known_shared[number, source].append(value)
    known_matches = []
    for (number, source), values in known_shared.items():
        match = _compare(students[number], known[source], values, settings,
                         students[number].comparable, known[source].comparable, known=True)
        if match is not None:
            uncommon = [value for value in values if value not in common]
            match.distinctive_tokens = len(_covered(students[number], uncommon, settings.k))
            known_matches.append(match)
    order = lambda match: (-match.score, -match.matched_tokens, match.a, match.b)  # noqa: E731
    return Result(settings, sorted(pairs, key=order), sorted(known_matches, key=order),
                  len(common), cutoff, len(shared))


def clusters(pairs: Sequence[Match]) -> list[list[str]]:
    """Groups of submissions linked by meaningful pairs (each group sorted, largest first)."""
    parent: dict[str, str] = {}

    def root(name: str) -> str:
        parent.setdefault(name, name)
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for match in pairs:
        if match.meaningful:
            parent[root(match.a)] = root(match.b)
    groups: dict[str, list[str]] = defaultdict(list)
    for name in list(parent):
        groups[root(name)].append(name)
    return sorted((sorted(group) for group in groups.values() if len(group) > 1),
                  key=lambda group: (-len(group), group))


def _covered(document: Document, values: Sequence[int], k: int) -> set[int]:
    covered: set[int] = set()
    for value in values:
        for position in document.fingerprints.get(value, ())[:_MAX_REPEATS]:
            covered.update(range(position, position + k))
    return covered


def _compare(a: Document, b: Document, values: Sequence[int], settings: Settings,
             a_tokens: int, b_tokens: int, known: bool = False) -> Match | None:
    """The match of one pair, or None below the threshold.

    ``a_tokens``, ``b_tokens``: each side's tokens that can match (the denominators).
    """
    k = settings.k
    a_covered = _covered(a, values, k)
    b_covered = _covered(b, values, k)
    a_fraction = min(1.0, len(a_covered) / a_tokens) if a_tokens else 0.0
    b_fraction = min(1.0, len(b_covered) / b_tokens) if b_tokens else 0.0
    if known:
        score = a_fraction
    else:
        both = a_tokens + b_tokens
        score = (len(a_covered) + len(b_covered)) / both if both else 0.0
    score = round(min(1.0, score), 4)
    if score < settings.threshold or not score:
        return None
    return Match(a.name, b.name, score, round(a_fraction, 4), round(b_fraction, 4),
                 frozenset(a_covered), frozenset(b_covered), _regions(a, b, values, k), settings.min_tokens,
                 a_tokens=a_tokens, b_tokens=b_tokens)


def _pairings(a_positions: list[int], b_positions: list[int]) -> list[tuple[int, int]]:
    """Which occurrence of a repeated fingerprint goes with which: in order when the
    counts agree (the same code in the same places), every combination otherwise."""
    if len(a_positions) == len(b_positions):
        return list(zip(a_positions, b_positions))
    return [(i, j) for i in a_positions for j in b_positions]


def _regions(a: Document, b: Document, values: Sequence[int], k: int) -> list[Region]:
    """Matched stretches: anchors on one diagonal, overlapping, in one segment, merged."""
    anchors = sorted({(i - j, i, j) for value in values for i, j in _pairings(
        a.fingerprints[value][:_MAX_REPEATS], b.fingerprints[value][:_MAX_REPEATS])})
    regions: list[Region] = []
    current: list[int] | None = None  # diagonal, a_start, a_end, b_start, b_end
    for diagonal, i, j in anchors:
        if (current is not None and diagonal == current[0] and i <= current[2]
                and a.segment_of[i] == a.segment_of[current[1]]
                and b.segment_of[j] == b.segment_of[current[3]]):
            current[2] = max(current[2], i + k)
            current[4] = max(current[4], j + k)
            continue
        if current is not None:
            regions.append(Region(*current[1:]))
        current = [diagonal, i, i + k, j, j + k]
    if current is not None:
        regions.append(Region(*current[1:]))
    return sorted(regions, key=lambda region: (region.a_start, region.b_start))
