"""``curriculum`` command line: a thin layer over the Python API.

Every subcommand maps its flags onto a config dataclass (``--config FILE`` supplies any of them
from YAML; flags given on the command line win) and calls one function a user can call too.
User mistakes end with one sentence on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence

from scoring.errors import UserError

EPILOG_SCORE = """examples:
  curriculum score                                   # digits, 10 members, 20 epochs
  curriculum score --dataset cifar10 --arch st-vgg --members 100 --epochs 140 --precision bf16
  accelerate launch --num_processes 8 -m curriculum score --dataset cifar10   # members split over 8 GPUs
"""

TRAIN_EPILOG = """examples:
  curriculum train --pacing exp                      # digits, orders by accessibility of runs/digits
  curriculum train --dataset cifar10 --pacing linear --a 0.8 --b 0.2 --steps 5000 --seeds 5
  curriculum train --by self-taught --orders curriculum,random
"""


def _shared_training_flags(parser: argparse.ArgumentParser) -> None:
    """Flags of :class:`curriculum.engine.TrainingConfig` (defaults live in the dataclass)."""
    from curriculum.engine import LR_SCHEDULES, OPTIMIZERS, PRECISIONS, TrainingConfig

    d = TrainingConfig()
    add = parser.add_argument
    add("--dataset", help=f"dataset name (`curriculum datasets` lists them; default {d.dataset})")
    add("--arch", help=f"architecture, or 'auto' to pick one for the data (default {d.arch}); see `curriculum architectures`")
    add("--batch-size", type=int, help=f"mini-batch size (default {d.batch_size})")
    add("--optimizer", choices=OPTIMIZERS, help=f"default {d.optimizer}")
    add("--lr", type=float, help=f"initial learning rate (default {d.lr})")
    add("--momentum", type=float, help=f"SGD momentum (default {d.momentum})")
    add("--weight-decay", type=float, help=f"L2 weight decay (default {d.weight_decay})")
    add("--lr-schedule", choices=LR_SCHEDULES, help=f"learning-rate schedule (default {d.lr_schedule})")
    add("--lr-decay", type=float, help=f"'step' schedule: divide the LR by this factor at each decay (default {d.lr_decay})")
    add("--min-lr", type=float, help=f"floor of the learning rate (default {d.min_lr})")
    add("--precision", choices=PRECISIONS, help=f"mixed precision (default {d.precision})")
    add("--augment", action=argparse.BooleanOptionalAction, default=None, help="random flip and crop on the device (default off, as in the seed papers)")
    add("--dropout", action=argparse.BooleanOptionalAction, default=None, help="keep the architecture's dropout (default on; seed 000 turns it off for random labels)")
    add("--label-noise", type=float, help="fraction of train labels replaced at random (1 = random labels; default 0)")
    add("--seed", type=int, help=f"base seed; member n uses a seed derived from it (default {d.seed})")
    add("--cpu", action="store_true", default=None, help="train on the CPU even when a GPU is present")
    add("--quiet", action="store_true", default=None, help="no progress bar or summary")
    add("--config", metavar="FILE", help="YAML file of flag values; flags on the command line win")


def _config_from(args: argparse.Namespace, cls: type):
    from curriculum.config import build_config

    flags = {k: v for k, v in vars(args).items() if k not in ("command", "config", "func")}
    return build_config(cls, args.config, **flags)


def _cmd_score(args: argparse.Namespace) -> None:
    from curriculum.stages.score import ScoreConfig, score

    score(_config_from(args, ScoreConfig))


def _cmd_stats(args: argparse.Namespace) -> None:
    from curriculum.stages.stats import StatsConfig, image_statistics

    image_statistics(_config_from(args, StatsConfig))


def _cmd_train(args: argparse.Namespace) -> None:
    from curriculum.stages.train import CurriculumConfig, curriculum_train

    curriculum_train(_config_from(args, CurriculumConfig))


def _print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, description in rows:
        print(f"{name:<{width}}  {description}")


def _cmd_datasets(args: argparse.Namespace) -> None:
    from curriculum.data import list_datasets

    _print_rows(list_datasets())


def _cmd_architectures(args: argparse.Namespace) -> None:
    from curriculum.models import list_architectures

    _print_rows(list_architectures())


def _train_parser(sub) -> None:
    from scoring.ordering import ORDERS
    from curriculum.pacing import PACINGS
    from curriculum.stages.train import SELF_TAUGHT, CurriculumConfig

    d = CurriculumConfig()
    train = sub.add_parser(
        "train", help="train easy-first with a pacing function, beside random, anti and no-curriculum controls",
        description="Train each order (--orders) for --seeds seeds with the same step budget, schedule and architecture; "
        "print and save, per order, final test accuracy with a 95%% interval, area under the learning curve, steps to a "
        "target accuracy, agreement among the order's seeds, and paired gains over the none and random controls.",
        epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _shared_training_flags(train)
    add = train.add_argument
    # No argparse choices: an unknown name gets the one-sentence error of CurriculumConfig.validate.
    add("--pacing", help=f"pacing family, one of {', '.join(PACINGS)} (default {d.pacing})")
    add("--start", type=float, help="exp/varied-exp/single-step: starting fraction of the data (default 0.04)")
    add("--inc", type=float, help="exp/varied-exp: growth factor per stage (default 1.9)")
    add("--step", type=int, help="exp/single-step: steps per stage (default: derived from --steps so that all data is open by half the budget)")
    add("--step-lengths", help="varied-exp: comma-separated stage lengths in steps (default: as --step)")
    add("--a", type=float, help="Wu et al. families: fraction of the budget at which all data is open, in (0, 10] (default 0.8)")
    add("--b", type=float, help="Wu et al. families: fraction of the data open at step 0, in [0, 1] (default 0.2)")
    add("--orders", help=f"comma-separated orders among {', '.join(ORDERS)} (default {d.orders})")
    add("--seeds", type=int, help=f"seeds per order (default {d.seeds})")
    add("--steps", type=int, help="step budget (default: 20 epochs' worth of batches)")
    add("--eval-every", type=int, help="steps between test evaluations (default: budget / 20)")
    add("--lr-decay-steps", type=int, help="'step' schedule: steps between LR decays (default: budget / 4)")
    add("--scores", help="score run to order by (default runs/<dataset>)")
    add("--by", help=f"score column to order by, its direction from the scores' metadata, or '{SELF_TAUGHT}' (default {d.by})")
    add("--scores-file", help="order by an external per-example score file instead: a `curriculum export` file, a CSV/parquet 'score' column (or --by NAME), C-score .npz, forgetting .pkl, cartography td_metrics.jsonl or dynamics folder, cleanlab .npz; rows matched by id when the file has ids")
    add("--scores-direction", choices=("higher", "lower"), help="which --scores-file values are easier, when the file does not say (never assumed)")
    add("--balanced", action=argparse.BooleanOptionalAction, default=None, help="class-balanced interleaving of the order (default on)")
    add("--target", type=float, help="accuracy for 'steps to target' (default: 95%% of the none control's final accuracy)")
    add("--out", help="output directory (default <score run>/curriculum/<pacing>)")
    train.set_defaults(func=_cmd_train)


def _cmd_export(args: argparse.Namespace) -> None:
    from scoring.formats import export

    files, notes = export(args.run, args.out, args.format, by=args.by, split=args.split, hf_dataset=args.hf_dataset)
    for line in notes:
        print(line)
    for path in files[:3]:
        print(f"wrote {path}")
    if len(files) > 3:
        print(f"... and {len(files) - 3} more files")


def _export_parser(sub) -> None:
    from scoring.formats import FORMATS

    export = sub.add_parser(
        "export", help="write a score run's scores in another format (CSV, parquet, C-score, forgetting, cartography, cleanlab, HF)",
        description="Formats (see scoring/formats.py): parquet and csv (the table with ids, directions and provenance; "
        "re-importable), cscore (.npz labels + scores, higher = easier), forgetting (Toneva et al.'s pickle), cartography "
        "(dynamics_epoch_{e}.jsonl per member + td_metrics.jsonl; needs --record-probs), cleanlab (.npz pred_probs from "
        "the test split by default: held-out), hf (a column added to a save_to_disk dataset, matched by id).",
    )
    export.add_argument("run", help="score run directory")
    export.add_argument("--format", required=True, choices=FORMATS)
    export.add_argument("--out", required=True, help="output file (a folder for cartography and hf)")
    export.add_argument("--by", default="accessibility", help="score column for cscore and hf (default accessibility)")
    export.add_argument("--split", help="split to export (default train; test for cleanlab)")
    export.add_argument("--hf-dataset", help="hf: the save_to_disk folder of the dataset to add the column to")
    export.set_defaults(func=_cmd_export)


def build_parser() -> argparse.ArgumentParser:
    from curriculum.recipes import recipe_help
    from curriculum.stages.score import TRAIN_RECORDS, ScoreConfig

    parser = argparse.ArgumentParser(
        prog="curriculum",
        description="Curriculum learning driven by agreement: score examples with a reference ensemble, "
        "then train easy-first beside honest controls.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = ScoreConfig()
    score = sub.add_parser(
        "score", help="train a reference ensemble and write per-example agreement scores",
        description="Train N members (own seed each), record every member's prediction on every train and test "
        "example at every checkpoint, and write runs/<dataset>/scores.parquet, summary.csv, report.md and figures/. "
        "Re-running the same command resumes an interrupted run.",
        epilog=EPILOG_SCORE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _shared_training_flags(score)
    score.add_argument("--members", type=int, help=f"ensemble size, at least 2 (default: the dataset's recipe, {recipe_help('members')})")
    score.add_argument("--epochs", type=float, help=f"training epochs per member (default: the dataset's recipe, {recipe_help('epochs')})")
    score.add_argument("--eval-every", type=float, help=f"checkpoint interval in epochs, fractions allowed; checkpoint 0 is the initialisation (default {d.eval_every:g})")
    score.add_argument("--lr-decay-epochs", type=float, help=f"'step' schedule: epochs between LR decays (default {d.lr_decay_epochs:g})")
    score.add_argument("--train-record", choices=TRAIN_RECORDS, help="train-set predictions from a separate eval pass, or from the training pass itself as in Pliushch et al.'s code (default eval)")
    score.add_argument("--record-probs", action="store_true", default=None, help="also keep every class probability per checkpoint (float16 [E, M, K] per member and split; the size is printed first; default off)")
    score.add_argument("--out", help="run directory (default runs/<dataset>)")
    score.set_defaults(func=_cmd_score)

    stats = sub.add_parser(
        "stats", help="image statistics of a dataset and their relation to a score run's learning order",
        description="Compute segment count, local entropy, DCT percentage and edge strength for every image "
        "(cached by dataset fingerprint), add them as columns of the run's scores.parquet, and print each "
        "statistic's mean +- std and Spearman correlation with accessibility. Also writes statistics.csv, "
        "statistics_curves.csv and figures/statistics_vs_agreement.png into the run.",
    )
    stats.add_argument("--dataset", help="dataset name (default digits)")
    stats.add_argument("--run", help="score run directory (default runs/<dataset>)")
    stats.add_argument("--label-noise", type=float, help="as given to `curriculum score` (default 0)")
    stats.add_argument("--seed", type=int, help="as given to `curriculum score` (default 0)")
    stats.add_argument("--workers", type=int, help="processes for the statistics (default: every core)")
    stats.add_argument("--quiet", action="store_true", default=None, help="print nothing")
    stats.add_argument("--config", metavar="FILE", help="YAML file of flag values; flags on the command line win")
    stats.set_defaults(func=_cmd_stats)

    _train_parser(sub)
    _export_parser(sub)
    sub.add_parser("datasets", help="list the dataset names").set_defaults(func=_cmd_datasets)
    sub.add_parser("architectures", help="list the architecture names").set_defaults(func=_cmd_architectures)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Dataset downloads and decoding report through logging (curriculum.data); show them unless --quiet.
    logging.basicConfig(level=logging.WARNING if getattr(args, "quiet", None) else logging.INFO, format="%(message)s")
    func: Callable[[argparse.Namespace], None] = args.func
    try:
        func(args)
    except UserError as err:
        print(f"curriculum {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"curriculum {args.command}: interrupted; run the same command again to resume.", file=sys.stderr)
        return 130
    return 0
