"""The highest GPD shape a merchant's own excesses may read: its category peers'. Pure.

A merchant's tail shape is estimated from its top 5 % of samples. Where earlier anomalies
judged medium fed its window (a spike read while the merchant was young), its own estimate
reads a heavy tail its trade does not have, and hides the next spike: of the blind stream's
catchable misses on light tails, 48 of 51 were at such merchants (docs/accuracy.md, round
18). The other merchants of its category and currency mostly sell alike, so their shapes
say how heavy a tail the trade has: a merchant's estimate is capped at their median plus
`TailFit.peer_cap_margin`, or `TailFit.peer_cap_mads` of their spread where they differ more
(the median absolute deviation, scaled by 1.4826 to a normal's standard deviation: a robust
spread one peer's odd shape cannot move). Peers are the merchants with at least
`TailFit.peer_min_samples` samples (a small merchant's shape is noise) and at least
`TailFit.peer_min_peers` of them, the merchant itself left out (docs/accuracy.md, round 19).

Each merchant's peers are its group without itself: the median and the median absolute
deviation of a sorted list without one element are read off by rank, so a group of n
merchants costs O(n log n), not one sort a merchant.
"""

from bisect import bisect_left
from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

from baseline_worker.tail import TailFit

# The median absolute deviation of a normal sample is its standard deviation / 1.4826.
MAD_TO_SIGMA = 1.4826

Merchant = TypeVar("Merchant", bound=Hashable)
Group = TypeVar("Group", bound=Hashable)


def peer_caps(
    shapes: Mapping[Merchant, float], groups: Mapping[Merchant, Group], fit: TailFit
) -> dict[Merchant, float]:
    """The cap of each merchant in `groups` (its category and currency) that has
    `fit.peer_min_peers` peers or more: the merchants of its group in `shapes` (the raw
    shapes of those with enough samples) but itself, at median + max(`fit.peer_cap_margin`,
    `fit.peer_cap_mads` * 1.4826 * MAD)."""
    margin, mads, min_peers = fit.peer_cap_margin, fit.peer_cap_mads, fit.peer_min_peers
    members: dict[Group, list[tuple[float, Merchant]]] = {}
    for merchant, shape in shapes.items():
        if (group := groups.get(merchant)) is not None:
            members.setdefault(group, []).append((shape, merchant))
    caps: dict[Merchant, float] = {}
    whole: dict[Group, float] = {}  # a group's cap for its merchants that are no peers
    for group, ranked in members.items():
        ranked.sort(key=lambda pair: pair[0])
        peers = _Peers([shape for shape, _ in ranked])
        if len(ranked) - 1 >= min_peers:
            for rank, (_, merchant) in enumerate(ranked):
                caps[merchant] = peers.cap(rank, margin, mads)
        if len(ranked) >= min_peers:
            whole[group] = peers.cap(None, margin, mads)
    for merchant, group in groups.items():
        if merchant not in shapes and group in whole:
            caps[merchant] = whole[group]
    return caps


class _Peers:
    """A group's sorted shapes, and their deviations from each centre asked for: one
    element left out moves the median by a rank at most, so there are few centres."""

    def __init__(self, ordered: list[float]) -> None:
        self._ordered = ordered
        self._deviations: dict[float, list[float]] = {}

    def cap(self, without: int | None, margin: float, mads: float) -> float:
        """The cap from the shapes without the one at rank `without` (None: all)."""
        centre = _median(self._ordered, without)
        deviations = self._deviations.get(centre)
        if deviations is None:
            deviations = sorted(abs(value - centre) for value in self._ordered)
            self._deviations[centre] = deviations
        own = None
        if without is not None:
            own = bisect_left(deviations, abs(self._ordered[without] - centre))
        return centre + max(margin, mads * MAD_TO_SIGMA * _median(deviations, own))


def _median(ordered: Sequence[float], without: int | None) -> float:
    """The median of the sorted `ordered` without the element at rank `without` (None: all
    of them): the others keep their order, so their middle is read off by rank. Ties read
    the same whichever of them is left out."""
    size = len(ordered) - (without is not None)

    def at(rank: int) -> float:
        return ordered[rank if without is None or rank < without else rank + 1]

    middle = size // 2
    return at(middle) if size % 2 else (at(middle - 1) + at(middle)) / 2
