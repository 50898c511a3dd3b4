"""A curriculum batch sampler that any PyTorch ``DataLoader`` accepts.

Step t's batch is ``batch_size`` distinct examples drawn uniformly from the first ``pacing(t)``
entries of an ordering (the open prefix; ``pacing(t)`` is clamped to ``[batch_size,
len(order)]``). Each step draws from its own generator, ``numpy.random.default_rng((seed, t))``,
so batches are independent across steps, iterating the sampler again gives the same batches,
and ``sampler.batch(t)`` gives step t's batch directly (to resume a run at step t).

In your own training loop::

    from torch.utils.data import DataLoader
    from curriculum.pacing import make_pacing
    from curriculum.sampler import CurriculumBatchSampler
    from scoring import Scores

    order = Scores.load("runs/digits").order("accessibility")  # easiest first, class-balanced
    pacing = make_pacing("exp", num_examples=len(order), batch_size=100, total_steps=5000)
    sampler = CurriculumBatchSampler(order, pacing, batch_size=100, num_steps=5000, seed=0)
    for x, y in DataLoader(dataset, batch_sampler=sampler):
        ...  # one optimisation step per batch; len(sampler) == 5000 steps

``pacing`` may be any callable from step to prefix size: ``None`` (or ``lambda t: len(order)``)
opens all data from the first step, the no-curriculum control.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from torch.utils.data import Sampler

from curriculum.pacing import Pacing
from scoring.errors import UserError

__all__ = ["CurriculumBatchSampler"]


class CurriculumBatchSampler(Sampler[list[int]]):
    """Yields ``num_steps`` batches; batch t is drawn without replacement from
    ``order[:pacing(t)]``.

    Args:
        order: example indices, easiest first (e.g. from ``order_examples``); no duplicates.
        pacing: step -> prefix size (a ``Pacing`` or any callable); None means all data.
        batch_size: examples per batch, at most ``len(order)``.
        num_steps: number of batches (the step budget); ``len(sampler)``.
        seed: a whole number >= 0; the same seed gives the same batches.
    """

    def __init__(self, order, pacing: Callable[[int], int] | None, batch_size: int, num_steps: int, seed: int = 0):
        super().__init__()
        order = np.asarray(order)
        if order.ndim != 1 or order.size == 0 or not np.issubdtype(order.dtype, np.integer):
            raise UserError("The order must be a non-empty 1-D sequence of example indices.")
        if len(np.unique(order)) != len(order):
            raise UserError(
                "The order lists some example more than once; pass a permutation "
                "of example indices (e.g. from order_examples)."
            )
        for name, value, low in (("batch_size", batch_size, 1), ("num_steps", num_steps, 1), ("seed", seed, 0)):
            if not _is_whole(value, low):
                raise UserError(f"{name} must be a whole number >= {low}, got {value!r}.")
        if batch_size > len(order):
            raise UserError(
                f"The batch size ({batch_size}) exceeds the {len(order)} examples "
                f"of the order; use a batch size of at most {len(order)}."
            )
        if pacing is not None and not callable(pacing):
            raise UserError(f"pacing must be a function of the step (or None), got {pacing!r}.")
        if isinstance(pacing, Pacing) and pacing.num_examples != len(order):
            raise UserError(
                f"The pacing function was built for {pacing.num_examples} examples "
                f"but the order has {len(order)}; build it with "
                f"num_examples={len(order)}."
            )
        self.order = order.astype(np.int64)
        self.pacing = pacing
        self.batch_size = int(batch_size)
        self.num_steps = int(num_steps)
        self.seed = int(seed)

    def __len__(self) -> int:
        return self.num_steps

    def prefix_size(self, t: int) -> int:
        """How many of the first examples of the order are open at step t."""
        size = len(self.order) if self.pacing is None else int(self.pacing(t))
        return min(max(size, self.batch_size), len(self.order))

    def batch(self, t: int) -> list[int]:
        """Step t's batch: ``batch_size`` distinct indices, uniform over the open prefix."""
        rng = np.random.default_rng((self.seed, t))
        picks = rng.choice(self.prefix_size(t), size=self.batch_size, replace=False)
        return self.order[picks].tolist()

    def batches(self, start: int, stop: int) -> np.ndarray:
        """Batches of steps ``start`` to ``stop - 1`` as one int64 array [steps, batch_size]
        (for a training loop that moves many steps' indices to the device at once)."""
        return np.array([self.batch(t) for t in range(start, stop)], dtype=np.int64).reshape(-1, self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        for t in range(self.num_steps):
            yield self.batch(t)


def _is_whole(value, low: int) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= low
