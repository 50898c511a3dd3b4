"""Numbers about images and distributions (numpy, scipy, scikit-image, OpenCV; no torch)."""

from stats.distributions import (
    bimodality,
    independent_null_consistency,
    mean_confidence_interval,
    paired_t_test,
    pearson,
    poisson_binomial_pmf,
    spearman,
)

__all__ = [
    "bimodality",
    "independent_null_consistency",
    "mean_confidence_interval",
    "paired_t_test",
    "pearson",
    "poisson_binomial_pmf",
    "spearman",
]
