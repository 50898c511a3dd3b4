"""Compare training orders trained from the same seeds: accuracy, speed and agreement.

Seed s trains every order from the same initial weights with the same batch draws, so order A
and order B are compared seed by seed (paired t-test), and each order's own seeds are an
ensemble whose test-set agreement (TP-agreement, mean consistency) is reported too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring import agreement
from stats.distributions import mean_confidence_interval, paired_t_test

CONTROLS = ("none", "random")


def _final(curves: pd.DataFrame, order: str) -> pd.Series:
    rows = curves[curves["order"] == order]
    last = rows[rows["step"] == rows["step"].max()]
    return last.set_index("seed")["test_accuracy"].sort_index()


def default_target(curves: pd.DataFrame) -> float:
    """95 % of the final mean accuracy of the ``none`` control (of the first order without it)."""
    reference = "none" if "none" in set(curves["order"]) else curves["order"].iloc[0]
    return 0.95 * float(_final(curves, reference).mean())


def steps_to_target(curve: pd.DataFrame, target: float) -> float:
    """First eval step of one run whose test accuracy reaches ``target`` (NaN if none does)."""
    hit = curve[curve["test_accuracy"] >= target]
    return float(hit["step"].min()) if len(hit) else float("nan")


def compare_orders(
    curves: pd.DataFrame,
    predictions: dict[tuple[str, int], np.ndarray],
    test_labels: np.ndarray,
    target: float | None = None,
) -> pd.DataFrame:
    """One row per order.

    ``curves`` has columns order, seed, step, test_accuracy; ``predictions[order, seed]`` is the
    final test prediction of that run. Columns: final accuracy mean and 95 % t-interval
    half-width; ``auc``, the area under the test-accuracy curve over the eval steps divided by
    their span (a mean accuracy during training, in [0, 1]); mean steps to reach ``target``
    (NaN if any seed never does; ``reached`` counts the seeds that do; ``target`` is the accuracy
    used, by default :func:`default_target`); TP-agreement and mean consistency of the order's
    seeds on the test set at the end; and, per control present, the mean gain in final accuracy
    over the control, paired by seed, and its p-value.
    """
    target = default_target(curves) if target is None else target
    orders = list(dict.fromkeys(curves["order"]))
    rows = []
    for order in orders:
        final = _final(curves, order)
        mean, half = mean_confidence_interval(final.to_numpy())
        areas, reach = [], []
        for _, run in curves[curves["order"] == order].groupby("seed"):
            run = run.sort_values("step")
            span = run["step"].iloc[-1] - run["step"].iloc[0]
            acc = run["test_accuracy"].to_numpy()
            areas.append(np.trapezoid(acc, run["step"]) / span if span else acc[-1])
            reach.append(steps_to_target(run, target))
        correct = np.stack([predictions[order, seed] == test_labels for seed in final.index])[:, None, :]
        row = {
            "order": order,
            "seeds": len(final),
            "final_acc": mean,
            "ci95": half,
            "auc": float(np.mean(areas)),
            "target": float(target),
            "steps_to_target": float(np.mean(reach)),
            "reached": int(np.sum(~np.isnan(reach))),
            "tpa": float(agreement.tp_agreement(correct)[0]),
            "mean_consistency": float(agreement.consistency(correct)[0].mean()),
        }
        for control in CONTROLS:
            if control in orders and control != order:
                paired = pd.concat([final, _final(curves, control)], axis=1, join="inner")  # pair by seed
                gain, p = paired_t_test(paired.iloc[:, 0].to_numpy(), paired.iloc[:, 1].to_numpy())
                row[f"gain_vs_{control}"], row[f"p_vs_{control}"] = gain, p
        rows.append(row)
    return pd.DataFrame(rows)


def format_comparison(table: pd.DataFrame) -> str:
    """The table ``curriculum train`` prints."""
    target = table["target"].iloc[0]
    gains = [c for c in ("none", "random") if f"gain_vs_{c}" in table]
    head = f"{'order':10} {'final acc (95% CI)':>20} {'AUC':>6} {f'steps to {target:.3f}':>16} {'TPa':>6} {'cons':>6}"
    head += "".join(f" {'vs ' + c + ' (p)':>17}" for c in gains)
    lines = [head, "-" * len(head)]
    for row in table.to_dict("records"):
        steps = (
            f"{row['steps_to_target']:.0f}"
            if np.isfinite(row["steps_to_target"])
            else f"- ({row['reached']}/{row['seeds']})"
        )
        ci = f"{row['final_acc']:.4f} +- {row['ci95']:.4f}" if np.isfinite(row["ci95"]) else f"{row['final_acc']:.4f}"
        line = (
            f"{row['order']:10} {ci:>20} {row['auc']:6.3f} {steps:>16} {row['tpa']:6.3f} {row['mean_consistency']:6.3f}"
        )
        for control in gains:
            gain, p = row.get(f"gain_vs_{control}"), row.get(f"p_vs_{control}")
            line += f" {'':>17}" if gain is None or np.isnan(gain) else f" {gain:+8.4f} ({p:5.2f})"
        lines.append(line)
    return "\n".join(lines)
