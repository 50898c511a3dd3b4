"""Run every seed-000 experiment the offline data allows and write the results into README.md.

    python experiments/reproduce.py                 # about 40 minutes on 2 CPU cores
    python experiments/reproduce.py --out runs/rep  # run directories (resumed when present)
    python experiments/reproduce.py --only fashion-mnist   # one group of experiments

Each experiment is one or more score runs (``curriculum score``, ``curriculum learners``) and a
``curriculum compare``; the numbers that decide whether the paper's finding holds are computed
here from the runs' tables, and the verdict is written beside them, in the table between the
``reproduce`` markers of experiments/README.md, with one figure of each copied to
experiments/figures/ (a row is replaced by the finding of its name; rows of groups not run stay).
Sizes are cut to fit a CPU (10 members instead of 100, a few epochs); the YAML configs beside this
script keep the paper's sizes for a GPU. The Fashion-MNIST group reads the real files of Debian's
``dataset-fashion-mnist`` package and is skipped, with a line, where it is not installed.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from curriculum.config.stages import CompareConfig, LearnersConfig, ScoreConfig, build_config
from curriculum.data.originals import FASHION_PACKAGE
from curriculum.data.probes import load_probe, probe_table
from curriculum.stages.compare import compare
from curriculum.stages.learners import learners
from curriculum.stages.score import score
from scoring import Scores

HERE = Path(__file__).resolve().parent
FIGURES = HERE / "figures"
MARKERS = ("<!-- reproduce:start -->", "<!-- reproduce:end -->")


@dataclass
class Finding:
    name: str
    paper: str
    figure: Path
    numbers: str
    reproduces: str


def run_score(out: Path, name: str, config_file: str | None = None, **settings) -> Path:
    """A score run (resumed or reused if ``out/name`` holds it), quiet; members and epochs from the
    dataset's recipe (digits: 12 members, 4 epochs) unless given."""
    config = build_config(
        ScoreConfig, HERE / config_file if config_file else None, **settings, out=str(out / name), quiet=True
    )
    started = time.perf_counter()
    run = score(config)
    print(f"  {name}: {time.perf_counter() - started:.0f} s", flush=True)
    return run


def run_compare(out: Path, name: str, *runs: Path) -> dict:
    return compare(CompareConfig(runs=[str(r) for r in runs], out=str(out / name), quiet=True))


def summary_at_peak(run: Path, split: str = "test") -> pd.Series:
    """The checkpoint (after initialisation) where agreement beyond the class-conditional null peaks."""
    summary = pd.read_csv(run / "summary.csv")
    rows = summary[(summary.split == split) & (summary.checkpoint > 0)]
    excess = rows.at0_observed + rows.at1_observed - rows.at0_class_null - rows.at1_class_null
    peak = rows.loc[excess.idxmax()].copy()
    peak["excess"] = excess.max()
    return peak


def agreement_finding(run: Path, name: str, paper: str, expect_bimodal: bool) -> Finding:
    """Agreement beyond the class-conditional null on both splits; it reproduces when it is there
    (natural data) or absent (the paper's breakdown cases) on both."""
    peaks = {split: summary_at_peak(run, split) for split in ("train", "test")}
    rel = Scores.load(run).reliability.loc["accessibility"]
    numbers = "; ".join(
        f"{split}, epoch {p.epoch:.3g} (accuracy {p.acc_mean:.2f}): c=1 {p.at1_observed:.3f} vs {p.at1_independent:.3f} "
        f"independent / {p.at1_class_null:.3f} given class, c=0 {p.at0_observed:.3f} vs {p.at0_independent:.3f} / "
        f"{p.at0_class_null:.3f}, excess {p.excess:+.3f}"
        for split, p in peaks.items()
    )
    numbers += f"; reliability of accessibility {rel['train']:.2f} train / {rel['test']:.2f} test"
    agree = [p.excess > 0.05 for p in peaks.values()]
    matches = sum(a == expect_bimodal for a in agree)
    verdict = (
        {2: "yes", 1: "partly", 0: "no"}[matches]
        + ": "
        + ", ".join(
            f"{split} {'agrees far beyond' if a else 'stays within 5 points of'} the class-conditional null"
            for split, a in zip(peaks, agree)
        )
    )
    return Finding(name, paper, keep_figure(run, "consistency_histograms.png", name), numbers, verdict)


def order_finding(tables: dict, a: str, b: str, name: str, paper: str, figure: Path, split: str = "test") -> Finding:
    row = tables[a, b]["correlations"].set_index("split").loc[split]
    share = row.spearman_r / row.ceiling
    numbers = (
        f"{split}: Pearson r {row.pearson_r:.3f}, Spearman r {row.spearman_r:.3f}, noise ceiling {row.ceiling:.3f} "
        f"({share:.0%} of it)"
    )
    verdict = (
        "yes" if share >= 0.85 else "partly" if row.spearman_r >= 0.5 else "no"
    ) + f": the order agrees to {share:.0%} of what the runs' own noise allows"
    return Finding(name, paper, figure, numbers, verdict)


def keep_figure(folder: Path, file: str, name: str) -> Path:
    """Copy a run's figure to experiments/figures/<name>.png (the README links it)."""
    FIGURES.mkdir(exist_ok=True)
    target = FIGURES / f"{re.sub(r'[^a-z0-9]+', '_', name.lower()).strip('_')}.png"
    shutil.copyfile(folder / "figures" / file, target)
    return target


def experiments(out: Path) -> list[Finding]:
    found = []
    print("digits: networks of one architecture, other seeds, other architectures, linear networks, probes", flush=True)
    a = run_score(out, "digits", probe="noise")
    b = run_score(out, "digits-seed1", seed=1, probe="gabor")
    fc = run_score(out, "digits-fc", arch="fc")
    linear = run_score(out, "digits-linear", arch="linear-small-st-vgg")
    found.append(
        agreement_finding(
            a,
            "Bimodal consistency on natural data (digits, 12 x small st-VGG)",
            "Fig. 1, 2, 11, 17 (bimodal from the first epochs on)",
            expect_bimodal=True,
        )
    )
    tables = run_compare(out, "compare-seed", a, b)
    found.append(
        order_finding(
            tables,
            "digits",
            "digits-seed1",
            "Two collections of one architecture learn in one order",
            "Fig. 6c: r = 0.99 (ResNet-50, ImageNet)",
            keep_figure(out / "compare-seed", "digits_vs_digits-seed1_accessibility.png", "seed accessibility"),
        )
    )
    tables = run_compare(out, "compare-arch", a, fc)
    found.append(
        order_finding(
            tables,
            "digits",
            "digits-fc",
            "Other architectures learn in the same order (small st-VGG vs fully connected)",
            "Fig. 6d-e, 25: r = 0.78-0.97",
            keep_figure(out / "compare-arch", "digits_vs_digits-fc_accessibility.png", "architecture accessibility"),
        )
    )
    tables = run_compare(out, "compare-linear", a, linear)
    easy = tables["digits", "digits-linear"]["easy_sets"]
    easy = easy[easy.split == "test"]
    found.append(
        Finding(
            "Linear networks: what they find easy, non-linear ones find easy too",
            "Fig. 7b: |linear only| small at every epoch",
            keep_figure(out / "compare-linear", "digits_vs_digits-linear_easy_sets.png", "linear easy sets"),
            "test, per epoch (both / non-linear only / linear only): "
            + ", ".join(
                f"{r.epoch_a:.3g}: {r.both}/{r.only_a}/{r.only_b}"
                for r in easy.iloc[:: max(1, len(easy) // 5)].itertuples()
            ),
            ("yes" if (easy.only_b <= easy.only_a).mean() >= 0.8 else "no")
            + f": linear-only easy examples are fewer than "
            f"non-linear-only ones at {(easy.only_b <= easy.only_a).mean():.0%} of the epochs",
        )
    )
    for run, probe in ((a, "noise"), (b, "gabor")):
        text = (run / "report.md").read_text().split("\n")[2]
        sentence = next(s for s in re.split(r"(?<=\.) ", text) if "out-of-sample" in s)
        members = json.loads((run / "run.json").read_text())["members"]
        row = probe_table({probe: load_probe(run, 0, members)}).iloc[0]
        consensus = row.consensus, row.consensus_null
        found.append(
            Finding(
                f"Out-of-sample probe: {probe} images shown to the digits networks",
                "Fig. 5: consensus above independent classifiers, more so for natural images",
                keep_figure(run, "probe_consensus.png", f"probe {probe}"),
                sentence,
                ("yes" if consensus[0] - consensus[1] > 0.05 else "no") + f": mean consensus "
                f"{consensus[0]:.2f} vs {consensus[1]:.2f} with labels shuffled over the images "
                "(yes: more than 0.05 above)",
            )
        )

    print("digits: random labels, train partitions, classical learners", flush=True)
    noisy = run_score(out, "digits-random-labels", label_noise=1.0, dropout=False)
    found.append(
        agreement_finding(
            noisy,
            "Random labels: agreement breaks down (digits, labels drawn at random)",
            "Fig. 9, 20: no bimodality, Gaussian around the mean accuracy",
            expect_bimodal=False,
        )
    )
    parts = [run_score(out, f"digits-part{k}of2", dataset=f"digits+part{k}of2") for k in range(2)]
    tables = run_compare(out, "compare-parts", *parts)
    found.append(
        order_finding(
            tables,
            "digits-part0of2",
            "digits-part1of2",
            "Collections trained on disjoint halves of the train set",
            "Fig. 22: bimodal on the shared test set",
            keep_figure(
                out / "compare-parts",
                "digits-part0of2_vs_digits-part1of2_accessibility.png",
                "partitions accessibility",
            ),
        )
    )
    classic = out / "digits-learners"
    if not (classic / "scores.parquet").exists():
        shutil.rmtree(classic, ignore_errors=True)
        learners(LearnersConfig(out=str(classic), quiet=True))
    tables = run_compare(out, "compare-learners", a, classic)
    found.append(
        order_finding(
            tables,
            "digits",
            "digits-learners",
            "Classical learners (SVM, k-NN, random forest, AdaBoost, logistic) learn the networks' easy examples first",
            "Fig. 30b: r = 0.83 (AdaBoost vs CNN); Fig. 31",
            keep_figure(
                out / "compare-learners", "digits_vs_digits-learners_accessibility.png", "learners accessibility"
            ),
        )
    )

    print("synthetic sets: Gabor patches, overlapping Gaussians", flush=True)
    gabor = run_score(out, "gabor", "score_gabor_stvgg.yaml", members=8, arch="small-st-vgg", epochs=8, eval_every=0.5)
    found.append(
        agreement_finding(
            gabor, "Gabor patches: agreement breaks down", "Fig. 8: roughly normal, not bimodal", expect_bimodal=False
        )
    )
    gaussian = run_score(out, "gaussian", "score_gaussian_fc.yaml", members=6, epochs=3, eval_every=0.5)
    found.append(
        agreement_finding(
            gaussian,
            "Two overlapping Gaussians, fully connected nets",
            "Fig. 10: like independent classifiers",
            expect_bimodal=False,
        )
    )

    print("shapes: a difficulty known by construction", flush=True)
    shapes = run_score(out, "shapes", dataset="shapes", arch="small-st-vgg", members=8, epochs=6, eval_every=0.5)
    found.append(
        factor_finding(
            shapes,
            "Accessibility tracks a difficulty known by construction (shapes, 8 x small st-VGG)",
            "not in the papers (Pliushch et al. 2022 relates image statistics to the order; here the generator "
            "sets size, contrast, clutter, occlusion and noise)",
        )
    )
    return found


def fashion_mnist_experiments(out: Path) -> list[Finding]:
    """Hacohen et al.'s findings on real 28x28 images (its Fig. 12 trains st-VGGs on all of Fashion-MNIST) at
    the CPU recipe, LeNet-5 on a sixth of the train set (experiments/score_fashion_mnist_lenet5_cpu.yaml)."""
    if not (Path(FASHION_PACKAGE) / "train-images-idx3-ubyte.gz").is_file():
        print(f"fashion-mnist: skipped, no {FASHION_PACKAGE} (apt-get install dataset-fashion-mnist)", flush=True)
        return []
    print("fashion-mnist: two seeds, a fully connected net, another sixth of the train set", flush=True)
    recipe = "score_fashion_mnist_lenet5_cpu.yaml"
    a = run_score(out, "fashion-mnist", recipe)
    b = run_score(out, "fashion-mnist-seed1", recipe, seed=1)
    fc = run_score(out, "fashion-mnist-fc", recipe, arch="fc")
    part = run_score(out, "fashion-mnist-part1of6", recipe, dataset="fashion-mnist+part1of6")
    found = [
        agreement_finding(
            a,
            "Bimodal consistency on real images (Fashion-MNIST, 12 x LeNet-5, a sixth of the train set)",
            "Fig. 12 (Fashion-MNIST, st-VGG: bimodal on train and test)",
            expect_bimodal=True,
        )
    ]
    for other, name, paper, label in (
        (
            b,
            "Fashion-MNIST: two collections of one architecture learn in one order",
            "Fig. 6c: r = 0.99 (ResNet-50, ImageNet)",
            "fashion seed accessibility",
        ),
        (
            fc,
            "Fashion-MNIST: other architectures learn in the same order (LeNet-5 vs fully connected)",
            "Fig. 6d-e, 25: r = 0.78-0.97",
            "fashion architecture accessibility",
        ),
        (
            part,
            "Fashion-MNIST: collections trained on disjoint sixths of the train set",
            "Fig. 22: bimodal on the shared test set",
            "fashion partitions accessibility",
        ),
    ):
        compared = out / f"compare-{other.name}"
        tables = run_compare(out, compared.name, a, other)
        figure = keep_figure(compared, f"{a.name}_vs_{other.name}_accessibility.png", label)
        found.append(order_finding(tables, a.name, other.name, name, paper, figure))
    return found


def factor_finding(run: Path, name: str, paper: str, split: str = "test") -> Finding:
    """Reproduces when accessibility has the sign construction predicts for every difficulty
    factor; partly when for most."""
    table = pd.read_csv(run / "factors.csv", keep_default_na=False)
    rows = table[(table.column == "accessibility") & (table.split == split) & (table.expected != "")]
    right = rows["as_built"].astype(str).eq("True")
    numbers = (
        f"{split}, Spearman r of accessibility with: "
        + ", ".join(f"{r.factor} {float(r.spearman_r):+.2f}" for r in rows.itertuples())
        + " (expected: larger, more contrast easier; more clutter, occlusion, noise harder)"
    )
    verdict = (
        "yes" if right.all() else "partly" if right.mean() >= 0.5 else "no"
    ) + f": {right.sum()} of {len(rows)} factors with the sign construction predicts"
    return Finding(name, paper, keep_figure(run, "factors.png", "shapes factors"), numbers, verdict)


GROUPS = {"seed-sets": experiments, "fashion-mnist": fashion_mnist_experiments}


def write_readme(found: list[Finding], readme: Path = HERE / "README.md") -> None:
    """Write the findings into the table between the markers of ``readme`` (appended the first time):
    a row whose finding has the name of one found replaces it, new ones come last, the rest stay."""
    text = readme.read_text()
    table = {}
    if MARKERS[0] in text:
        old = text[text.index(MARKERS[0]) : text.index(MARKERS[1])].splitlines()
        table = {
            line[2:].split(" | ", 1)[0]: line for line in old if line.startswith("| ") and not line.startswith("| ---")
        }
        table.pop("finding", None)  # the header
    table.update(
        {
            f.name: f"| {f.name} | {f.paper} | [figure](figures/{f.figure.name}) | {f.numbers} | {f.reproduces} |"
            for f in found
        }
    )
    rows = [
        "| finding | paper | this toolkit | numbers | reproduces? |",
        "| --- | --- | --- | --- | --- |",
        *table.values(),
    ]
    block = "\n".join(
        [
            MARKERS[0],
            "",
            "Written by `python experiments/reproduce.py` from its runs (finished runs are reused).",
            "",
            *rows,
            "",
            MARKERS[1],
        ]
    )
    if MARKERS[0] in text:
        text = text[: text.index(MARKERS[0])] + block + text[text.index(MARKERS[1]) + len(MARKERS[1]) :]
    else:
        text += "\n" + block + "\n"
    readme.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default="runs/reproduce", help="folder of the run directories (default runs/reproduce)"
    )
    parser.add_argument("--only", choices=tuple(GROUPS), help="run one group of experiments (default: all)")
    args = parser.parse_args()
    found = [f for name, group in GROUPS.items() if args.only in (None, name) for f in group(Path(args.out))]
    write_readme(found)
    for f in found:
        print(f"{f.reproduces.split(':')[0]:7} {f.name}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
