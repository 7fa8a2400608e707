"""Length probes: the best configuration trained longer, to measure whether training longer helps.

How long to train is judged from the curves (the playbook's "Deciding how long
to train"): a curve still falling at the end says train longer. A learning-rate
schedule that decays to (nearly) zero hides it: the updates at the end are too
small to move the curve, so a run far too short ends as flat as one long enough
(a 40-step cosine run and a 300-step one both look converged). The curves then
cannot say; a measurement can.

So, when a study's best search trial logged its learning rate (a metric named
in :data:`RATE_METRICS`) and that rate ended at or below :data:`DECAYED` of its
peak, the study adds ``length_probes`` trials (spec field, default
:data:`DEFAULT_LENGTH_PROBES`; 0 turns them off) once its replicate phase has
finished: the configuration the replicates re-ran (the best search trial),
trained :data:`FACTOR` times ``max_train_steps`` (its schedule stretched with
it: a trial's schedule is built from ``trial.max_train_steps``), each with the
seed of one of those replicates (paired: the seed's share of the spread
cancels in each pair's difference), so no more probes than replicates. The
``max_train_steps`` check compares each probe with the replicate of its seed:
the mean of the differences and its one-sided 95% lower bound (2 pairs at the
least). Three pairs resolve a gain of about three sds of the pairs'
differences. They cost ``length_probes`` x 2 trials of compute.

They are outside the ``trials`` budget (which counts trials of the study's
length) and shown apart ("+ 2 length probes at 600 steps"); a note stored with
them lists them and their step budget. Without replicates there is no
measured baseline, so there are no probes.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from tunebook.errors import SpecError

#: Runs of the best configuration trained longer, unless the spec says otherwise.
DEFAULT_LENGTH_PROBES = 3
#: The most a spec may ask for.
MAX_LENGTH_PROBES = 20
#: How many times the study's max_train_steps a probe trains.
FACTOR = 2
#: A schedule "decays" when its last rate is at most this share of its peak: an order of magnitude below it,
#: where the last updates are too small for a flat end to say the run was long enough.
DECAYED = 0.1
#: Metric names read as the learning rate (the workloads', the Hugging Face and Keras integrations' ``lr``).
RATE_METRICS = ("lr", "learning_rate", "train/lr", "train/learning_rate")
#: The note that marks a study's length probes (its evidence: their numbers, what they re-run, their steps).
NOTE_KIND = "length_probe"


def check_length_probes(value: Any) -> int:
    """The spec's ``length_probes`` (None: the default); :class:`SpecError` in one line otherwise."""
    if value is None:
        return DEFAULT_LENGTH_PROBES
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LENGTH_PROBES:
        raise SpecError("length_probes", f"expected an integer from 0 to {MAX_LENGTH_PROBES}, got {value!r}",
                        f"e.g. length_probes: {DEFAULT_LENGTH_PROBES} (runs of the best at {FACTOR}x max_train_steps "
                        "when the learning rate decays), or 0 to turn them off")
    return value


def decayed_share(rates: Sequence[float]) -> float | None:
    """The last logged rate as a share of the peak (None when no finite positive peak was logged)."""
    finite = [float(r) for r in rates if r is not None and math.isfinite(float(r))]
    if not finite:
        return None
    peak = max(finite)
    if not peak > 0:
        return None
    return max(finite[-1], 0.0) / peak


def decays(rates: Sequence[float]) -> bool:
    """Does this learning-rate trace (in step order) end at or below :data:`DECAYED` of its peak?"""
    share = decayed_share(rates)
    return share is not None and share <= DECAYED


def probe_steps(max_train_steps: int) -> int:
    """The step budget of a study's length probes."""
    return FACTOR * int(max_train_steps)
