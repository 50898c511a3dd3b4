"""Configs: the CLI is generated from the dataclasses, and one check guards flags, YAML and Python.

Bad values are refused in one sentence with exit status 2 before anything is written; the
subprocess cases are cheap because a refused value never imports torch.
"""

import subprocess

import pytest
from conftest import run_cli

from curriculum import cli
from curriculum.config.options import build_config, specs
from curriculum.config.stages import ScoreConfig, StatsConfig, TrainConfig, pacing_default
from curriculum.pacing import PACINGS
from curriculum.stages.score import checkpoint_steps
from scoring.errors import UserError

STAGES = {"score": ScoreConfig, "stats": StatsConfig, "train": TrainConfig}


def _one_sentence(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("command", "flags", "message"),
    [
        ("score", ["--lr", "nan"], "--lr must be a finite number in (0, 10], got nan."),
        ("score", ["--lr", "inf"], "--lr must be a finite number in (0, 10], got inf."),
        ("score", ["--lr", "-1"], "--lr must be a finite number in (0, 10], got -1."),
        ("score", ["--min-lr", "0.1"], "--min-lr must be at most --lr (0.05), got 0.1."),
        ("score", ["--momentum", "-1"], "--momentum must be a finite number in [0, 1), got -1."),
        ("score", ["--weight-decay", "-1"], "--weight-decay must be a finite number in [0, 1), got -1."),
        ("score", ["--lr-decay-epochs", "-1"], "--lr-decay-epochs must be a finite number in (0, 10000], got -1."),
        ("score", ["--epochs", "inf"], "--epochs must be a finite number in (0, 10000], got inf."),
        ("score", ["--eval-every", "inf"], "--eval-every must be a finite number in (0, 10000], got inf."),
        ("score", ["--label-noise", "2"], "--label-noise must be a finite number in [0, 1], got 2."),
        ("score", ["--members", "2.5"], "--members must be a whole number >= 2, got 2.5."),
        ("score", ["--members", "three"], "--members must be a whole number >= 2, got three."),
        ("score", ["--seed", "-1"], "--seed must be a whole number in [0, 4294967295], got -1."),
        ("score", ["--optimizer", "adamw"], "--optimizer must be one of sgd, adam, got adamw."),
        ("score", ["--lrr", "3"], "unrecognized arguments: --lrr 3; see curriculum score --help"),
        ("score", ["--lr"], "argument --lr: expected one argument; see curriculum score --help"),
        ("train", ["--lr", "1e4"], "--lr must be a finite number in (0, 10], got 1e4."),
        ("train", ["--stage-length", "0"], "--stage-length must be a whole number >= 1, got 0."),
        ("train", ["--pacing", "linear", "--b", "2"], "--b must be a finite number in [0, 1], got 2."),
        ("stats", ["--workers", "0"], "--workers must be a whole number >= 1, got 0."),
    ],
)
def test_bad_flag_is_one_sentence_before_anything_is_written(tmp_path, command, flags, message):
    proc = run_cli(
        [command, *flags, "--out" if command != "stats" else "--run", tmp_path / "out"], tmp_path, check=False
    )
    assert message in _one_sentence(proc)
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("members: three", "members in c.yaml must be a whole number >= 2, got 'three'."),
        ("members: 2.5", "members in c.yaml must be a whole number >= 2, got 2.5."),
        ("lr: [0.1, 0.2]", "lr in c.yaml must be a finite number in (0, 10], got [0.1, 0.2]."),
        ("augment: maybe", "augment in c.yaml must be true or false, got 'maybe'."),
        ("momentum: .nan", "momentum in c.yaml must be a finite number in [0, 1), got nan."),
    ],
)
def test_wrong_type_in_yaml_is_the_same_sentence_as_on_the_command_line(tmp_path, text, message):
    (tmp_path / "c.yaml").write_text(text + "\n")
    proc = run_cli(["score", "--config", "c.yaml", "--out", tmp_path / "out"], tmp_path, check=False)
    assert message in _one_sentence(proc)
    assert not (tmp_path / "out").exists()


def test_numeric_strings_and_lists_from_yaml_are_converted(tmp_path):
    """YAML 1.1 reads 5e-4 as a string; a comma-list flag may be a YAML list."""
    (tmp_path / "s.yaml").write_text("lr: 5e-4\nmembers: 3.0\nepochs: '2'\n")
    config = build_config(ScoreConfig, tmp_path / "s.yaml")
    assert (config.lr, config.members, config.epochs) == (5e-4, 3, 2.0)
    assert type(config.members) is int
    (tmp_path / "t.yaml").write_text("orders: [curriculum, none]\npacing: varied-exp\nstage_lengths: [50, 25]\n")
    config = build_config(TrainConfig, tmp_path / "t.yaml")
    assert config.orders == ["curriculum", "none"] and config.pacing_params() == {"stage_lengths": [50, 25]}


def test_python_configs_get_the_same_check():
    config = ScoreConfig(lr="5e-4", members=2.0)
    config.validate()
    assert (config.lr, config.members) == (5e-4, 2)
    for bad, message in [
        ({"momentum": -1}, "--momentum must be a finite number in [0, 1), got -1."),
        ({"members": True}, "--members must be a whole number >= 2, got True."),
        ({"lr": float("nan")}, "--lr must be a finite number in (0, 10], got nan."),
    ]:
        with pytest.raises(UserError) as info:
            ScoreConfig(**bad).validate()
        assert str(info.value) == message


@pytest.mark.parametrize("command", ["score", "train", "stats"])
def test_output_that_is_a_file_or_unwritable_is_refused(tmp_path, command):
    flag = "--run" if command == "stats" else "--out"
    (tmp_path / "file").write_text("x")
    proc = run_cli([command, flag, tmp_path / "file"], tmp_path, check=False)
    assert f"{flag} {tmp_path / 'file'}: {tmp_path / 'file'} is a file, not a directory" in _one_sentence(proc)
    proc = run_cli([command, flag, tmp_path / "file" / "sub"], tmp_path, check=False)
    assert "is a file, not a directory" in _one_sentence(proc)
    proc = run_cli([command, flag, "/proc/curriculum-test"], tmp_path, check=False)  # unwritable, even for root
    assert f"{flag} /proc/curriculum-test: cannot write into /proc" in _one_sentence(proc)
    assert (tmp_path / "file").read_text() == "x"


def test_default_run_directory_under_a_file_is_refused_before_training(tmp_path):
    (tmp_path / "runs").write_text("x")
    proc = run_cli(["score", "--members", "2", "--epochs", "1", "--quiet", "--processes", "1"], tmp_path, check=False)
    assert "--out runs/digits: runs is a file, not a directory" in _one_sentence(proc)


def test_checkpoint_interval_shorter_than_a_step_is_refused():
    with pytest.raises(
        UserError,
        match=r"--eval-every 1e-09 is shorter than one training step \(an epoch is 14 "
        r"steps\); pass --eval-every 0.0714 or more",
    ):
        checkpoint_steps(20, 1e-9, 14)
    assert checkpoint_steps(1, 1 / 14, 14) == list(range(15))


def _stage_parser(command: str):
    return cli.build_parser().parse_known_args([command])[0].cli_parser


@pytest.mark.parametrize("command", STAGES)
def test_every_field_is_a_flag_with_its_dataclass_default(command):
    """The parser is generated: a new field is a new flag, and the help shows the field's default."""
    by_dest = {a.dest: a for a in _stage_parser(command)._actions}
    for name, spec in specs(STAGES[command]).items():
        action = by_dest[name]
        assert action.option_strings[0] == "--" + name.replace("_", "-") and action.default is None
        default = spec.field.default
        if isinstance(default, (int, float, str)) and not isinstance(default, bool):
            shown = f"{default:g}" if isinstance(default, float) else str(default)
            assert f"(default: {shown})" in action.help, (name, action.help)


def test_pacing_defaults_in_the_help_come_from_the_pacing_classes():
    help_text = {a.dest: a.help.replace("%%", "%") for a in _stage_parser("train")._actions}
    for param in ("start", "inc", "stage_length", "a", "b"):
        for family in (name for name, cls in PACINGS.items() if param in cls.params):
            assert pacing_default(family, param) in help_text[param]
    assert "(default: 0.04)" in help_text["start"] and "(default: 0.8)" in help_text["a"]


def test_help_is_generated_and_flags_keep_their_names(tmp_path):
    proc = run_cli(["score", "--help"], tmp_path)
    for flag in (
        "--members",
        "--eval-every",
        "--lr-decay-epochs",
        "--train-record {eval,online}",
        "--no-dropout",
        "--augment",
        "--out",
        "--config FILE",
    ):
        assert flag in proc.stdout
    help_text = " ".join(proc.stdout.split())  # argparse wraps lines
    # --momentum: range from the field, default from the recipes (curriculum/config/recipes.py)
    assert "in [0, 1) (default: the dataset's recipe, gabor 0, gabor-overlap 0, gaussian 0, else 0.9)" in help_text


def test_flags_win_over_the_file_and_the_file_over_defaults(tmp_path):
    (tmp_path / "c.yaml").write_text("members: 4\nlr: 0.1\n")
    config = build_config(ScoreConfig, tmp_path / "c.yaml", members="3", lr=None)
    # flag > file > the dataset's recipe (digits: 4 epochs) > the generic default (momentum 0.9)
    assert (config.members, config.lr, config.epochs, config.momentum) == (3, 0.1, 4.0, 0.9)


def test_a_recipe_covers_its_family_of_names():
    """Sizes, seeds, label noise and partitions of a dataset train like the dataset itself."""
    for name in ("digits+noise0.2", "digits+part0of2", "DIGITS"):
        assert build_config(ScoreConfig, None, dataset=name).epochs == 4.0, name
    assert build_config(ScoreConfig, None, dataset="gaussian:500-seed2").lr_schedule == "constant"
    assert build_config(ScoreConfig, None, dataset="cifar10").epochs == 20.0


def test_renamed_flags_and_keys_still_work_with_a_warning(tmp_path, caplog):
    """--step, --step-lengths and train's --eval-every were renamed; scripts that use them keep working."""
    parser = cli.build_parser()
    args = parser.parse_args(["train", "--step", "7", "--eval-every", "5"])
    config = build_config(TrainConfig, None, **cli.given_flags(args, TrainConfig))
    assert (config.stage_length, config.eval_every_steps) == (7, 5)
    assert "step was renamed stage_length" in caplog.text and "eval_every was renamed eval_every_steps" in caplog.text
    (tmp_path / "t.yaml").write_text("pacing: varied-exp\nstep_lengths: 50,25\n")
    assert build_config(TrainConfig, tmp_path / "t.yaml").stage_lengths == [50, 25]
    with pytest.raises(UserError, match="gives both step and its new name stage_length; keep stage_length"):
        build_config(TrainConfig, step=5, stage_length=6)


def test_the_same_mistake_gets_the_same_sentence_everywhere():
    """One validator: a flag, a pacing built in Python and a dataset loaded in Python say it alike."""
    from curriculum.data.datasets import load_dataset
    from curriculum.pacing import make_pacing

    with pytest.raises(UserError) as flag:
        build_config(TrainConfig, pacing="exp", start=2)
    with pytest.raises(UserError) as api:
        make_pacing("exp", num_examples=10, batch_size=1, start=2)
    with pytest.raises(UserError) as data:
        load_dataset("digits", label_noise=2)
    assert str(flag.value) == "--start must be a finite number in (0, 1], got 2."
    assert str(api.value) == "exp pacing: start must be a finite number in (0, 1], got 2."
    assert str(data.value) == "label_noise must be a finite number in [0, 1], got 2."
