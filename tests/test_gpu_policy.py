"""The GPU's choices, run on the CPU: a score run and a curriculum run under the GPU's device policy
(``CURRICULUM_DEVICE_POLICY=gpu``: members stacked, bf16 autocast, a fused optimizer, the guard read
every 50 steps), the score run killed and resumed, both against the one-by-one float32 run; and
the resume from a training state several checkpoints back (states are saved at every k-th
checkpoint), which trains forward again without rewriting what was committed.

bf16 changes the numbers, not only their order: on digits a bf16 member's training leaves the
float32 member's path within the first epoch (its labels then differ on a few per cent of the
examples, whether stacked or one by one, as measured in experiments/README.md), so what is
asserted against float32 is what bf16 keeps: the initialisation's labels (only the evaluation's
precision differs there), and at every checkpoint the labels of the examples the float32 member
is confident of (P(true class) above 1/2).
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, TINY_SCORE, cli_env, load_record

from curriculum.data.datasets import load_dataset
from scoring.records import SPLITS

GPU = {"CURRICULUM_DEVICE_POLICY": "gpu"}
CHECKPOINTS = 3  # TINY_SCORE: 1 epoch, a checkpoint every half epoch


def _start(args, tmp, **env):
    return subprocess.Popen(
        [sys.executable, "-m", "curriculum", *map(str, args)],
        cwd=tmp,
        env={**cli_env(tmp), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc) -> None:
    _, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stderr[-3000:]


def _records(run_dir):
    return {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in sorted((run_dir / "records").glob("*/*.npy"))}


def _labels(run_dir):
    dataset = load_dataset("digits")
    return {split: load_record(run_dir, split, dataset.split(split).labels, 2, CHECKPOINTS) for split in SPLITS}


def test_a_gpu_policy_score_run_resumes_exactly_and_keeps_the_float32_labels(tmp_path):
    args = ["score", *TINY_SCORE]
    reference = _start([*args, "--out", tmp_path / "reference"], tmp_path, **GPU)  # uninterrupted, on the other core
    killed = _start([*args, "--out", tmp_path / "run"], tmp_path, **GPU)
    progress = tmp_path / "run" / "records" / "member_001" / "progress.json"
    deadline = time.time() + 600
    while not (progress.exists() and json.loads(progress.read_text())["checkpoints"] >= 2):
        assert killed.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "running"
    resumed = _start([*args, "--out", tmp_path / "run"], tmp_path, **GPU)
    float32 = _start([*args, "--out", tmp_path / "float32"], tmp_path, CURRICULUM_DEVICE_POLICY="cpu")
    for proc in (reference, resumed, float32):
        _finish(proc)

    settings = json.loads((tmp_path / "run" / "run.json").read_text())["settings"]
    assert settings["precision"] == "bf16" and settings["layout"].startswith("stacked as grouped convolutions")
    assert json.loads((tmp_path / "float32" / "run.json").read_text())["settings"]["layout"] == "one by one"
    assert _records(tmp_path / "run") == _records(tmp_path / "reference")  # bit-exact after the kill

    gpu, cpu = _labels(tmp_path / "run"), _labels(tmp_path / "float32")
    for split in SPLITS:
        same = gpu[split].pred == cpu[split].pred  # [member, checkpoint, example]
        # The same initial weights: only the evaluation's precision differs, and it tips labels whose
        # logits are nearly tied, as many are at initialisation (12 of 1347 train labels of member 1
        # on this CPU, 99.11 %). A wrong weight or cast changes most labels.
        assert same[:, 0].mean(axis=1).min() >= 0.99, same[:, 0].mean(axis=1)
        confident = cpu[split].p_true > 0.5
        assert confident[:, 1:].mean() > 0.2  # trained members are confident of many examples
        for member in range(2):
            for checkpoint in range(CHECKPOINTS):
                mine = confident[member, checkpoint]
                if mine.sum() >= 20:
                    assert same[member, checkpoint][mine].mean() >= 0.99, (split, member, checkpoint)


def test_a_gpu_policy_curriculum_run_trains_stacked_in_bf16_as_float32_does(tmp_path, score_run, monkeypatch):
    import torch

    from curriculum.stages.train import TrainConfig, make_plan, train
    from curriculum.training.policy import device_policy

    config = TrainConfig(
        dataset="digits",
        scores=str(score_run),
        orders=["curriculum", "random"],  # two orders: stacked as one model, as every order is on a GPU
        steps=30,
        eval_every_steps=10,
        batch_size=50,  # bf16 convolutions are emulated on most CPUs: 15x float32's time
        seeds=1,
        quiet=True,
    )
    results = {}
    for kind in ("gpu", "cpu"):
        monkeypatch.setenv("CURRICULUM_DEVICE_POLICY", kind)
        plan = make_plan(config.complete(), load_dataset("digits"), device_policy(torch.device("cpu")))
        assert (plan.stacked, plan.precision) == ((True, "bf16") if kind == "gpu" else (False, "no"))
        results[kind] = train(TrainConfig(**{**vars(config), "out": str(tmp_path / kind)}))
        curves = (tmp_path / kind / "curves.csv").read_text()
        assert curves.count("\n") == 1 + 2 * 3  # 2 orders x 3 evaluations
    gpu, cpu = (results[kind].set_index("order").final_acc for kind in ("gpu", "cpu"))
    assert (gpu - cpu).abs().max() <= 0.1, (gpu, cpu)  # 30 steps: both far above chance (0.1)
    assert gpu.min() > 0.3 and cpu.min() > 0.3


def _kill_after(commits: int):
    """A MemberRecord.commit that raises after ``commits`` commits: a run killed between two
    checkpoints, in-process."""
    from scoring.records import MemberRecord

    original, count = MemberRecord.commit, [0]

    class Killed(Exception):
        pass

    def commit(self):
        if count[0] == commits:
            raise Killed
        count[0] += 1
        return original(self)

    return commit, Killed


STATES_EVERY_2 = {"dataset": "digits", "members": 2, "epochs": 1, "eval_every": 0.1, "quiet": True, "processes": "1"}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The uninterrupted float32 run of STATES_EVERY_2."""
    from curriculum.stages.score import ScoreConfig, score

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CURRICULUM_DEVICE_POLICY", "cpu")
        return score(ScoreConfig(**STATES_EVERY_2, out=str(tmp_path_factory.mktemp("every2") / "run")))


@pytest.mark.parametrize("states", ["kept", "lost"])
def test_a_resume_trains_forward_from_a_state_checkpoints_back(tmp_path, monkeypatch, states, uninterrupted):
    """States every 2nd checkpoint (11 checkpoints: 1 epoch of 14 steps, every 0.1 epoch); killed
    while committing checkpoint 6 (its states saved, rows 0..5 committed), the run resumes from
    the state of checkpoint 4 (or, with every state lost, from the start), trains checkpoint 5
    again without writing it, and ends with the uninterrupted record."""
    from curriculum.stages.score import ScoreConfig, score, state_every
    from scoring.records import MemberRecord

    monkeypatch.setenv("CURRICULUM_DEVICE_POLICY", "cpu")
    config = STATES_EVERY_2
    assert state_every(11, 0.1) == 2
    commit, killed = _kill_after(2 * 6)  # both members' rows of checkpoints 0..5, then no more
    with monkeypatch.context() as patch:
        patch.setattr(MemberRecord, "commit", commit)
        with pytest.raises(killed):
            score(ScoreConfig(**config, out=str(tmp_path / "run")))
    member = tmp_path / "run" / "records" / "member_001"
    assert json.loads((member / "progress.json").read_text())["checkpoints"] == 6
    assert sorted(p.name for p in member.glob("state_*.pt")) == ["state_0004.pt", "state_0006.pt"]
    if states == "lost":
        for path in (tmp_path / "run" / "records").glob("*/state_*.pt"):
            os.unlink(path)
    written = []
    monkeypatch.setattr(
        MemberRecord,
        "append",
        lambda self, row, original=MemberRecord.append: (written.append(self.rows), original(self, row))[1],
    )
    score(ScoreConfig(**config, out=str(tmp_path / "run")))
    assert sorted(set(written)) == list(range(6, 11))  # only the rows not yet committed
    assert _records(tmp_path / "run") == _records(uninterrupted)
    assert not list((tmp_path / "run" / "records").glob("*/state_*.pt"))


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (RuntimeError("vmap: It looks like you're calling .item() on a Tensor"), False),  # what vmap cannot take
        (None, True),  # torch.OutOfMemoryError
        (RuntimeError("cuDNN error: CUDNN_STATUS_EXECUTION_FAILED"), True),
    ],
)
def test_stacking_falls_back_once_with_the_reason_and_never_hides_a_device_error(monkeypatch, error, raised):
    import torch

    from curriculum.config.stages import TrainingConfig
    from curriculum.training.engine import resolve_arch, resolve_stacking
    from curriculum.training.members import StackedMembers
    from curriculum.training.policy import policy_of

    error = error or torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(StackedMembers, "train_step", fail)
    config, dataset = TrainingConfig(dataset="digits").complete(), load_dataset("digits")
    said = []

    def decide():
        return resolve_stacking(
            config,
            resolve_arch(config, dataset),
            dataset,
            policy_of("gpu", torch.device("cpu")),
            "bf16",
            warn=said.append,
        )

    if raised:
        with pytest.raises(type(error)):
            decide()
        assert not said
    else:
        assert decide() is None
        assert said == [
            (
                "Members of 'small-st-vgg' cannot be stacked (RuntimeError: vmap: It looks like you're calling "
                ".item() on a Tensor); training them one by one."
            )
        ]


def test_gpu_check_refuses_a_machine_without_a_gpu_in_one_sentence(tmp_path):
    """experiments/gpu_check.sh parses, and without a GPU stops before it writes anything."""
    import torch

    script = ROOT / "experiments" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0  # the whole script parses
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: run experiments/gpu_check.sh itself")
    done = subprocess.run(
        ["bash", str(script), str(tmp_path / "out")],
        env={**cli_env(tmp_path), "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "gpu_check.sh needs a GPU that torch can see (torch.cuda.is_available() is False).\n"
    assert not (tmp_path / "out").exists()
