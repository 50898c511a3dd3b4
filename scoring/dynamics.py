"""Per-member training-dynamics scores: when each member learns an example, how often it forgets
it, how confident it is along the way, and how far its early output is from the label.

Array in, array out (numpy only), on the prediction record of N members at E checkpoints on M
examples: ``correct`` bool ``[N, E, M]`` (integer 0/1 is accepted too), ``p_true`` float
``[N, E, M]`` (P(true class)), ``el2n`` float ``[N, E, M]``. Every function uses all the
checkpoints it is given; to leave initialisation out, as Toneva et al. and Swayamdipta et al. count
only what happens during training, pass ``correct[:, 1:]``.

Sources: forgetting events, Toneva et al. 2019; data maps, Swayamdipta et al. 2020; EL2N, Paul et
al. 2021. The agreement scores of the whole ensemble are in :mod:`scoring.agreement`; the score
stage computes all of them in one streaming pass over the record (:mod:`scoring.stream`).
"""

from __future__ import annotations

import numpy as np

from scoring.agreement import record_array
from scoring.errors import UserError

__all__ = ["learned_checkpoint", "forgetting_events", "data_map", "mean_el2n"]


def learned_checkpoint(correct) -> np.ndarray:
    """Checkpoint from which each member classifies each example correctly for good.

    The smallest e such that ``correct[n, e', i]`` for every ``e' >= e``. An example right at
    e = 0 and never wrong after gets 0; one wrong at the last checkpoint gets E.

    Returns
    -------
    np.ndarray of int, shape [N, M]
        In ``[0, E]``; ``E`` (one past the last index) = not learned by the end.
        **Lower = easier.**
    """
    correct = record_array(correct, "correct", "bool")
    tail = np.cumprod(correct[:, ::-1, :], axis=1).sum(axis=1)  # trailing run of correct
    return correct.shape[1] - tail


def forgetting_events(correct) -> np.ndarray:
    """Forgetting events (Toneva et al. 2019): correct -> incorrect transitions per member.

    Counted between consecutive checkpoints. An example a member never gets right at any
    checkpoint gets E (the number of checkpoints), more than any real count (at most E // 2),
    so it ranks hardest. An example right only at initialisation counts as learned and forgotten;
    pass ``correct[:, 1:]`` to count from the first trained checkpoint.

    Returns
    -------
    np.ndarray of int, shape [N, M]
        In ``[0, E // 2]``, or ``E`` for never learned. **Lower = easier.**
    """
    correct = record_array(correct, "correct", "bool")
    events = (correct[:, :-1, :] & ~correct[:, 1:, :]).sum(axis=1)
    return np.where(correct.any(axis=1), events, correct.shape[1])


def data_map(p_true, correct):
    """Data-map coordinates (Swayamdipta et al. 2020), one point per example.

    Per member, over checkpoints: confidence = mean P(true class), variability = its standard
    deviation (``ddof=0``, as their code's ``np.std``), correctness = fraction of checkpoints
    right. Each is then averaged over members. (Averaging per-member statistics keeps the
    spread between members out of ``variability``; the std over all members and checkpoints
    pooled would mix it in.)

    Returns
    -------
    confidence : np.ndarray of float, shape [M]
        In ``[0, 1]``; **higher = easier**.
    variability : np.ndarray of float, shape [M]
        In ``[0, 0.5]``; no easy direction (high = ambiguous, low = easy or hard).
    correctness : np.ndarray of float, shape [M]
        In ``[0, 1]``; higher = easier.
    """
    p_true = record_array(p_true, "p_true", "float")
    correct = record_array(correct, "correct", "bool")
    if p_true.shape != correct.shape:
        raise UserError(f"`p_true` and `correct` must have the same shape; got {p_true.shape} and {correct.shape}.")
    if not np.all((p_true >= 0) & (p_true <= 1)):
        raise UserError("`p_true` must hold probabilities in [0, 1].")
    confidence = p_true.mean(axis=1).mean(axis=0)
    variability = p_true.std(axis=1, ddof=0).mean(axis=0)
    correctness = correct.mean(axis=1).mean(axis=0)
    return confidence, variability, correctness


def mean_el2n(el2n, checkpoint: int) -> np.ndarray:
    """EL2N (Paul et al. 2021) at one checkpoint, averaged over members.

    Parameters
    ----------
    checkpoint : int
        Index into the checkpoint axis; negative indices count from the end. Paul et al. use an
        early checkpoint (a few epochs in), not initialisation (index 0).

    Returns
    -------
    np.ndarray of float, shape [M]
        In ``[0, sqrt(2)]``; **lower = easier**.
    """
    el2n = record_array(el2n, "el2n", "float")
    e = el2n.shape[1]
    if not -e <= checkpoint < e:
        raise UserError(f"Checkpoint {checkpoint} is out of range for {e} recorded checkpoints.")
    return el2n[:, checkpoint, :].mean(axis=0)
