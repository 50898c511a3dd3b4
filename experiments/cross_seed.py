"""Does split-half reliability predict what a second run gives? Compare two finished score runs.

Run the same `curriculum score` command twice with different `--seed` (and `--out`), then:

    python experiments/cross_seed.py runs/digits-seed0 runs/digits-seed1

For every score column and split it prints the Spearman correlation between the two runs'
scores (measured) beside each run's own split-half reliability, Spearman-Brown corrected to its
ensemble size (predicted). The numbers in experiments/README.md come from this script.
"""

from __future__ import annotations

import argparse

from scoring import Scores
from stats.distributions import spearman_rho


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a")
    parser.add_argument("run_b")
    args = parser.parse_args()
    a, b = Scores.load(args.run_a), Scores.load(args.run_b)
    a.check_fingerprint(b.fingerprint, b.meta.get("dataset", args.run_b))
    print(f"{'score':20} {'split':6} {'measured':>9} {'predicted A':>12} {'predicted B':>12}")
    for column in a.reliability.index:
        for split in a.reliability.columns:
            measured = spearman_rho(a.column(column, split), b.column(column, split))
            print(
                f"{column:20} {split:6} {measured:9.3f} {a.reliability.loc[column, split]:12.3f} "
                f"{b.reliability.loc[column, split]:12.3f}"
            )


if __name__ == "__main__":
    main()
