"""Numbers about images and distributions (numpy, scipy, scikit-image, OpenCV, numba; no torch).

from stats import compute_statistics, bimodality, spearman
values = compute_statistics(images_uint8)      # {"segments", "entropy", "dct", "edges"} -> [M]
"""

from stats.distributions import (
    bimodality,
    independent_null_consistency,
    mean_confidence_interval,
    paired_t_test,
    pearson,
    poisson_binomial_pmf,
    spearman,
)
from stats.images import (
    STATISTICS,
    compute_statistics,
    dct_percentage,
    dct_percentages,
    edge_strength,
    edge_strengths,
    local_entropies,
    local_entropy,
    segment_count,
    segment_counts,
)

__all__ = [
    "STATISTICS",
    "bimodality",
    "compute_statistics",
    "dct_percentage",
    "dct_percentages",
    "edge_strength",
    "edge_strengths",
    "independent_null_consistency",
    "local_entropies",
    "local_entropy",
    "mean_confidence_interval",
    "paired_t_test",
    "pearson",
    "poisson_binomial_pmf",
    "segment_count",
    "segment_counts",
    "spearman",
]
