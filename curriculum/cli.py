"""``curriculum`` command line: a thin layer over the Python API.

Every subcommand's flags are generated from its config dataclass (:mod:`curriculum.config.stages`:
names, types, defaults and help live there once); ``--config FILE`` supplies any of them from
YAML, flags given on the command line win, and the config is checked before the stage, and with
it torch, is imported. User mistakes end with one sentence on stderr and exit status 2. On the
CPU, ``score`` may run as worker processes of the same command (:mod:`curriculum.training.launch`),
which checks what it can before any starts and speaks for all of them; under any launcher an
error all processes share is printed by rank 0 alone.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
import traceback
import typing
from collections.abc import Sequence

from curriculum.config.options import add_arguments, build_config, given_flags
from curriculum.config.stages import CompareConfig, LearnersConfig, ScoreConfig, StatsConfig, TrainConfig
from curriculum.training.launch import (
    PEER,
    PeerFailed,
    join_launcher,
    launch,
    launched_here,
    leave_process_group,
    preflight,
    processes_to_launch,
    report_failure,
)
from scoring.errors import UserError

SCORE_EPILOG = """examples:
  curriculum score                                   # digits: 12 members, 4 epochs (its recipe)
  curriculum score --dataset shapes --arch small-st-vgg --epochs 6    # known difficulty: see the report's factor table
  curriculum score --dataset cifar10 --arch st-vgg --members 100 --epochs 140 --precision bf16
  curriculum score --dataset fashion-mnist+part0of6 --data-dir /usr/share/datasets/fashion-mnist \\
      --arch lenet5 --members 12 --epochs 2         # files of apt-get install dataset-fashion-mnist
  curriculum score --processes 2                     # on the CPU: members split over 2 processes (auto: one a core)
  accelerate launch --num_processes 8 -m curriculum score --dataset cifar10   # members split over 8 GPUs
"""

TRAIN_EPILOG = """examples:
  curriculum train --pacing exp                      # digits, orders by accessibility of runs/digits
  curriculum train --dataset cifar10 --pacing linear --a 0.8 --b 0.2 --steps 5000 --seeds 5
  curriculum train --by self-taught --orders curriculum,random
"""


COMPARE_EPILOG = """examples:
  curriculum compare runs/digits runs/digits-seed1
  curriculum compare runs/digits runs/digits-linear runs/digits-learners --threshold 0.9
"""


class _Parser(argparse.ArgumentParser):
    """Argparse errors as one sentence pointing at ``--help``, not a usage block."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _run_score(config: ScoreConfig) -> None:
    from curriculum.stages.score import score

    score(config)


def _run_stats(config: StatsConfig) -> None:
    from curriculum.stages.stats import image_statistics

    image_statistics(config)


def _run_train(config: TrainConfig) -> None:
    from curriculum.stages.train import train

    train(config)


def _run_compare(config: CompareConfig) -> None:
    from curriculum.stages.compare import compare

    compare(config)


def _run_learners(config: LearnersConfig) -> None:
    from curriculum.stages.learners import learners

    learners(config)


def _print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, description in rows:
        print(f"{name:<{width}}  {description}")


def _export(args: argparse.Namespace) -> None:
    from scoring.formats import export

    files, notes = export(
        args.run, args.out, args.format, by=args.by, split=args.split, hf_dataset=args.hf_dataset, match=args.match
    )
    for line in notes:
        print(line)
    for path in files[:3]:
        print(f"wrote {path}")
    if len(files) > 3:
        print(f"... and {len(files) - 3} more files")


def _export_parser(sub) -> None:
    """``curriculum export``: a scoring command with no training config, so its flags are its own."""
    export = sub.add_parser(
        "export",
        help="write a score run's scores in another format (CSV, parquet, C-score, forgetting, cartography, cleanlab, HF)",
        description="Formats (see scoring/formats.py): parquet and csv (the table with ids, directions and provenance; "
        "re-importable), cscore (.npz labels + scores + ids, higher = easier), forgetting (Toneva et al.'s "
        "pickle, indices = "
        "ids), cartography (dynamics_epoch_{e}.jsonl per member, checkpoints.json mapping each file to its "
        "checkpoint, and "
        "td_metrics.jsonl; needs --record-probs), cleanlab (.npz pred_probs + ids from the test split by "
        "default: "
        "out-of-sample), hf (a column added to a save_to_disk dataset, matched by id or --match "
        "content_hash; a dataset "
        "whose rows span both splits needs --split). Each says what it wrote and matched.",
    )
    export.add_argument("run", help="score run directory")
    export.add_argument("--format", required=True, help="one of the formats above")
    export.add_argument("--out", required=True, help="output file (a folder for cartography and hf)")
    export.add_argument("--by", default="accessibility", help="score column for cscore and hf (default accessibility)")
    export.add_argument("--split", help="split to export (default train; test for cleanlab)")
    export.add_argument("--hf-dataset", help="hf: the save_to_disk folder of the dataset to add the column to")
    export.add_argument(
        "--match",
        default="id",
        choices=("id", "content_hash"),
        help="hf: match the dataset's rows by id (default) or by the content hash of its image column",
    )
    export.set_defaults(cli_run=_export, cli_config=None, cli_parser=export)


def _list_datasets(args: argparse.Namespace) -> None:
    from curriculum.data.datasets import list_datasets

    _print_rows(list_datasets())


def _list_architectures(args: argparse.Namespace) -> None:
    from curriculum.models.architectures import list_architectures

    _print_rows(list_architectures())


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="curriculum",
        description="Curriculum learning driven by agreement: score examples with a reference ensemble, "
        "then train easy-first beside honest controls.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    stages = [
        (
            "score",
            ScoreConfig,
            _run_score,
            "train a reference ensemble and write per-example agreement scores",
            "Train N members (own seed each), record every member's prediction on every train and test "
            "example at every checkpoint, and write runs/<dataset>/scores.parquet, summary.csv, report.md and figures/. "
            "Re-running the same command resumes an interrupted run.",
            SCORE_EPILOG,
        ),
        (
            "stats",
            StatsConfig,
            _run_stats,
            "image statistics of a dataset and their relation to a score run's learning order",
            "Compute segment count, local entropy, DCT percentage and edge strength for every image "
            "(cached by dataset fingerprint), add them as columns of the run's scores.parquet, and print each "
            "statistic's mean +- std and Spearman correlation with accessibility. Also writes statistics.csv, "
            "statistics_curves.csv and figures/statistics_vs_agreement.png into the run; for a generated dataset (shapes, ...) "
            "also each statistic's correlation with the factors that made the images (statistics_factors.csv).",
            None,
        ),
        (
            "train",
            TrainConfig,
            _run_train,
            "train easy-first with a pacing function, beside random, anti and no-curriculum controls",
            "Train each order (--orders) for --seeds seeds with the same step budget, schedule and architecture; "
            "print and save, per order, final test accuracy with a 95% interval, area under the learning curve, steps to a "
            "target accuracy, agreement among the order's seeds, and paired gains over the none and random controls.",
            TRAIN_EPILOG,
        ),
        (
            "compare",
            CompareConfig,
            _run_compare,
            "put score runs side by side: accessibility correlation, cross-consistency, easy sets",
            "For every pair of runs and every split whose images both share (other seeds, architectures, learners, label noise "
            "or train partitions of one dataset): the Pearson and Spearman correlation of accessibility beside the noise "
            "ceiling from split-half reliability, cross-consistency at accuracy-matched checkpoints, and the overlap of the "
            "easy sets (Hacohen et al., section 4). Writes tables, figures and report.md into --out and a section into the "
            "first run's report.md.",
            COMPARE_EPILOG,
        ),
        (
            "learners",
            LearnersConfig,
            _run_learners,
            "classical learners (SVM, k-NN, random forest, AdaBoost, ...) as a collection, written as a score run",
            "Fit each scikit-learn learner on growing nested parts of the train set (checkpoint 0: the class prior) and write "
            "a score run of them, one member per learner, so it has its own agreement report and `curriculum compare` puts it "
            "beside a network collection (Hacohen et al., appendix F).",
            None,
        ),
    ]
    for name, cls, run, summary, description, epilog in stages:
        stage = sub.add_parser(
            name,
            help=summary,
            description=description,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_arguments(stage, cls)
        stage.set_defaults(cli_run=run, cli_config=cls, cli_parser=stage)
    _export_parser(sub)
    for name, run, summary in [
        ("datasets", _list_datasets, "list the dataset names"),
        ("architectures", _list_architectures, "list the architecture names"),
    ]:
        listing = sub.add_parser(name, help=summary)
        listing.set_defaults(cli_run=run, cli_config=None, cli_parser=listing)
    return parser


PEER_GRACE_S = 5.0  # how long a process that lost its peers leaves its launcher to stop it before it speaks


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    join_launcher()
    args, extra = build_parser().parse_known_args(argv)
    if extra:  # reported by the subcommand's parser, so the hint names its --help
        args.cli_parser.error(f"unrecognized arguments: {' '.join(extra)}")
    # Dataset downloads and decoding report through logging (curriculum.data.datasets); show them unless --quiet.
    logging.basicConfig(level=logging.WARNING if getattr(args, "quiet", None) else logging.INFO, format="%(message)s")
    # Past a file-size limit (ulimit -f) the write then fails with EFBIG, reported in one sentence,
    # instead of the signal killing the process without a word.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    name = f"curriculum {args.command}"
    try:
        if args.cli_config is None:  # a listing or export: its flags are its own
            args.cli_run(args)
        else:  # a stage: its config is built and checked before the stage (and torch) is imported
            config = build_config(args.cli_config, args.config, **given_flags(args, args.cli_config))
            if args.command == "score":
                processes = processes_to_launch(config)
                if "WORLD_SIZE" not in os.environ:  # no launcher started this process: it launches
                    preflight(config)
                if processes > 1:
                    return launch(processes, argv)  # the workers run this same command
            args.cli_run(config)
    except UserError as err:
        return _fail(2, f"{name}: error: {err}\n", "error", shared=getattr(err, "shared", False))
    except KeyboardInterrupt:
        return _fail(130, f"{name}: interrupted; run the same command again to resume.\n", "interrupt", shared=True)
    except PeerFailed:
        return _fail(
            1,
            f"{name}: error: another process of this run stopped, and its own message says why; run the "
            "same command again to resume once that is fixed.\n",
            PEER,
        )
    except Exception:
        if not launched_here():
            raise
        return _fail(1, traceback.format_exc(), "bug")
    leave_process_group()  # on success too: left to the interpreter's exit, gloo's threads may abort it
    return 0


def _fail(status: int, text: str, kind: str, shared: bool = False) -> int:
    """End a process on an error with one voice: under :func:`curriculum.training.launch.launch` the
    launcher prints the report; under another launcher an error every process shares is printed by
    rank 0 alone, and a process that only lost its peers waits for the launcher to stop it first."""
    report_failure(status, text, kind)
    leave_process_group()
    if launched_here() or (shared and int(os.environ.get("RANK", "0")) > 0):
        return status
    if kind == PEER:
        time.sleep(PEER_GRACE_S)
    sys.stderr.write(text)
    return status
