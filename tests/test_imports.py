"""Fast start: the command line's help, listings and one-sentence errors, and ``from scoring import
Scores``, import none of the heavy libraries (torch alone costs about 2 s of CPU).

Each case runs in a fresh interpreter and lists which heavy modules it loaded.
"""

import json
import subprocess
import sys

import pytest
from conftest import cli_env

HEAVY = ("torch", "accelerate", "scipy", "matplotlib", "pandas", "sklearn")
CLI = "from curriculum import cli; cli.main({argv!r})"


@pytest.mark.parametrize(
    ("code", "allowed"),
    [
        ("from scoring import Scores", ("pandas",)),  # the table is a pandas DataFrame
        ("from scoring.agreement import consistency; from stats.distributions import bimodality", ()),
        ("from curriculum import make_pacing, order_examples, ScoreConfig", ()),
        ("from curriculum import cli; cli.build_parser()", ()),
        (CLI.format(argv=["architectures"]), ()),
        (CLI.format(argv=["datasets"]), ()),
        (CLI.format(argv=["score", "--lr", "-1"]), ()),
        (
            "from curriculum.training import launch; from curriculum import ScoreConfig; launch.processes_to_launch(ScoreConfig(members=3, cpu=True))",
            (),
        ),
        (CLI.format(argv=["train", "--pacing", "cubic"]), ()),
        (CLI.format(argv=["compare", "one-run"]), ()),
        (CLI.format(argv=["learners", "--learners", "svm"]), ()),
    ],
)
def test_light_imports(tmp_path, code, allowed):
    probe = f"import sys, json\n{code}\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=cli_env(tmp_path), cwd=tmp_path
    )
    assert proc.stdout.strip(), proc.stderr
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(loaded) <= set(allowed), f"{code!r} imported {loaded}"
