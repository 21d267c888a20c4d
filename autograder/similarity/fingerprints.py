"""Winnowed fingerprints of a token stream (Schleimer, Wilkerson and Aiken, SIGMOD 2003).

TRUSTED, in the grading parent; pure computation on token strings.

Every run of ``k`` consecutive tokens (a *k-gram*) inside one segment is hashed;
in every window of ``w`` consecutive k-gram hashes the smallest is selected
(on ties the one already selected stays, else the rightmost: "robust
winnowing", which keeps repeated code from selecting every copy of a hash). Two guarantees follow, which are the parameters' meaning:

* a shared run shorter than ``k`` tokens is never seen (``k`` is the noise
  threshold: ``return np.tanh(x)`` is 5 tokens);
* a shared run of at least ``w + k - 1`` tokens always shares a fingerprint.

Why not ``copydetect``: it was checked (PyPI 0.5.0) and does not fit. Its
tokenizer is lexical (Pygments), so it cannot drop what the release gave at the
level of statements, tell docstrings from strings or reorder commutative
operands, and its ``k`` counts characters of the filtered text rather than
tokens; its ``CopyDetector`` compares every pair of files, where a class of 500
needs an inverted index; it hashes k-grams with Python's ``hash()`` of ``str``,
which is salted per process, so the fingerprints selected (and so the scores)
change from run to run; and it would bring Jinja2, Pygments and its own report
(with scripts) for the thirty lines below. Hashes here are the first 8 bytes of
BLAKE2b of the k-gram's tokens: the same on every run and every machine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ['DEFAULT_K', 'DEFAULT_WINDOW', 'kgram_hashes', 'winnow']

#: Noise threshold in normalised tokens: about one short statement
#: (``slopes = np.where(inputs > 0, 1., self.alpha)`` is 11 tokens).
DEFAULT_K = 8

#: Winnowing window; with ``k`` = 8 every shared run of 11 tokens is found, and
#: because ``k`` >= ``w`` the k-grams of consecutive fingerprints overlap, so the
#: selected fingerprints of a copied run cover all of it.
DEFAULT_WINDOW = 4


def kgram_hashes(tokens: Sequence[str], segments: Sequence[tuple[int, int]], k: int) -> list[tuple[int, int]]:
    """Hashes of every k-gram that lies inside one segment.

    Args:
        tokens: The token stream.
        segments: ``(start, end)`` ranges of ``tokens``; k-grams never cross them.
        k: Tokens per k-gram.

    Returns:
        ``(hash, position)`` pairs in order of position, where position is the
        index of the k-gram's first token; a segment shorter than ``k`` gives none.
    """
    hashes = []
    for start, end in segments:
        for position in range(start, end - k + 1):
            text = '\x1f'.join(tokens[position:position + k]).encode('utf-8', 'surrogatepass')
            digest = hashlib.blake2b(text, digest_size=8).digest()
            hashes.append((int.from_bytes(digest, 'little'), position))
    return hashes


def winnow(hashes: Sequence[tuple[int, int]], window: int) -> list[tuple[int, int]]:
    """Robust winnowing of k-gram hashes.

    Windows are taken over the hashes of one submission in order; a window that
    spans two segments is harmless (it only selects one of their hashes).

    Args:
        hashes: ``(hash, position)`` pairs in order of position.
        window: Hashes per window (>= 1).

    Returns:
        The selected ``(hash, position)`` pairs, each position once, in order.
        Fewer hashes than one window give the smallest of them.
    """
    if not hashes:
        return []
    if window <= 1:
        return list(hashes)
    selected = []
    last = -1
    for start in range(max(1, len(hashes) - window + 1)):
        stop = min(start + window, len(hashes))
        best = start
        for index in range(start + 1, stop):
            if hashes[index][0] <= hashes[best][0]:
                best = index
        if start <= last and hashes[last][0] == hashes[best][0]:
            continue  # robust: the minimum already selected stays selected
        if best != last:
            selected.append(hashes[best])
            last = best
    return selected
