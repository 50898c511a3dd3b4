"""How alike are two score runs' records? The share of predicted labels that each member keeps from
one finished run to another of the same data, at every checkpoint.

    python experiments/record_agreement.py RUN RUN_REFERENCE

RUN is the run under test (bf16, stacked, another device, another torch) and RUN_REFERENCE the one
it should match (float32, one by one). Member k of one run is compared with member k of the other,
so both must use the same --seed. For every split and checkpoint it prints the share of predicted
labels the same member gives in both runs (lowest and mean over members), how many examples the
reference members are confident of (P(true class) above 1/2: how far training has come), and the
lowest share on those. Comparing the reference with a run that differs from it only in --seed gives the scale:
how much two runs agree that share only the data. The bf16 figures in experiments/README.md come
from this script.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from scoring.errors import UserError
from scoring.records import SPLITS, check_complete, open_field, read_run_info


def _info(run_dir: Path) -> dict:
    info = read_run_info(run_dir)
    if info is None:
        raise UserError(f"{run_dir} holds no score run (no run.json); give the --out of a `curriculum score` run.")
    return info


def _read(run_dir: Path, split: str, field: str, members: int, checkpoints: int, examples: int) -> np.ndarray:
    """``[members, checkpoints, examples]`` of one field."""
    return np.stack(
        [open_field(run_dir, split, field, m, checkpoints, examples).read(0, checkpoints) for m in range(members)]
    )


def record_agreement(run: str | Path, reference: str | Path) -> pd.DataFrame:
    """One row per split and checkpoint: ``epoch``, ``agree_min`` and ``agree_mean`` (the share of
    examples whose predicted label is the same in both runs, lowest and mean over members),
    ``confident`` (the share the reference members are confident of, mean over members) and
    ``agree_confident_min`` (the lowest share of agreeing labels among those; NaN where none).

    Both runs must be complete records of the same data and checkpoints; the first
    ``min(members)`` members are compared."""
    run, reference = Path(run), Path(reference)
    a, b = _info(run), _info(reference)
    if a["dataset"]["fingerprint"] != b["dataset"]["fingerprint"]:
        raise UserError(f"{run} and {reference} score different data; compare two runs of the same --dataset.")
    if a["checkpoints"] != b["checkpoints"]:
        raise UserError(
            f"{run} and {reference} record different checkpoints; compare two runs with the same "
            "--epochs, --eval-every and --batch-size."
        )
    members, checkpoints = min(a["members"], b["members"]), len(a["checkpoints"])
    for run_dir in (run, reference):
        check_complete(run_dir, members, checkpoints)
    rows = []
    for split in SPLITS:
        examples = a["dataset"]["sizes"][split]
        pred, ref = (_read(d, split, "pred", members, checkpoints, examples) for d in (run, reference))
        confident = _read(reference, split, "p_true", members, checkpoints, examples) > 0.5
        same = pred == ref
        for c, checkpoint in enumerate(a["checkpoints"]):
            mine = confident[:, c]
            on_confident = [same[m, c][mine[m]].mean() if mine[m].any() else np.nan for m in range(members)]
            rows.append(
                {
                    "split": split,
                    "checkpoint": c,
                    "epoch": checkpoint["epoch"],
                    "agree_min": same[:, c].mean(axis=1).min(),
                    "agree_mean": same[:, c].mean(),
                    "confident": mine.mean(),
                    "agree_confident_min": np.nanmin(on_confident) if mine.any() else np.nan,
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="the run under test")
    parser.add_argument("reference", help="the run it should match (same --seed)")
    args = parser.parse_args()
    try:
        table = record_agreement(args.run, args.reference)
    except UserError as error:
        print(error, file=sys.stderr)
        sys.exit(2)
    print(
        f"{'split':6} {'ckpt':>4} {'epoch':>6} {'agree min':>10} {'agree mean':>11} {'confident':>10} {'on those':>9}"
    )
    for row in table.itertuples():
        on_those = "-" if np.isnan(row.agree_confident_min) else f"{row.agree_confident_min:.2%}"
        print(
            f"{row.split:6} {row.checkpoint:4d} {row.epoch:6.2f} {row.agree_min:10.2%} {row.agree_mean:11.2%} "
            f"{row.confident:10.1%} {on_those:>9}"
        )
    trained = table[table.checkpoint > 0]
    if len(trained):
        worst = trained.loc[trained.agree_min.idxmin()]
        print(
            f"worst trained checkpoint: {worst.agree_min:.2%} of one member's {worst.split} labels agree "
            f"(checkpoint {worst.checkpoint}, epoch {worst.epoch:.3g}); on the labels the reference is confident "
            f"of, at worst {trained.agree_confident_min.min():.2%}"
        )


if __name__ == "__main__":
    main()
