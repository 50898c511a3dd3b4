"""experiments/bench_score.py runs its training ways, and the engine's two ways of stacking (what
the benchmark times against each other) train the same members: their records agree."""

import re
import subprocess
import sys

from conftest import ROOT, cli_env


def test_the_benchmark_times_each_way_and_compares_their_records(tmp_path):
    args = "--train 40 --test 10 --members 2 --epochs 1 --batch-size 10 --arch small-st-vgg --precision no"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "experiments" / "bench_score.py"),
            *args.split(),
            "--ways",
            "one-by-one,stacked,vmap",
        ],
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    for way in ("one-by-one", "stacked", "vmap"):
        assert re.search(rf"^{way} +[0-9.]+ ", done.stdout, re.M), done.stdout
    # float32: stacking only reassociates sums, and the grouped way and vmap compute the same
    # convolutions, so after 4 steps every label agrees but for a near tie.
    for pair in ("stacked vs one-by-one", "stacked vs vmap"):
        worst = re.search(rf"^{pair} records: ([0-9.]+)% of the predicted labels agree at the worst", done.stdout, re.M)
        assert worst and float(worst.group(1)) >= 90, done.stdout
