"""What a `z_score` means next to a `tail_probability` on the wire (verdicts, alerts, API).

For the rules that read a tail probability p (`tail`, and `low_variance` when it has one)
the z_score is p's z-equivalent: the z whose one-sided normal tail is p, "as rare as a zσ
event". The detector writes z from p; the gateway gives p back from the stored z.
"""

import math
from statistics import NormalDist

_NORMAL = NormalDist()
# Past this a probability is 0 in double precision; its z-equivalent is ~37.6.
_SMALLEST = 1e-300


def z_equivalent(probability: float) -> float:
    """The z whose one-sided normal tail has this probability."""
    return -_NORMAL.inv_cdf(min(max(probability, _SMALLEST), 1 - 1e-16))


def probability_of(z: float) -> float:
    """The one-sided normal tail beyond z (the inverse of `z_equivalent`)."""
    return 0.5 * math.erfc(z / math.sqrt(2))
