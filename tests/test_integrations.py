"""Recording where users train, end to end with the real libraries on tiny models built here (no
download): the Hugging Face Trainer callback (text and image classification, resumed from a
checkpoint), the Lightning callback (resumed from a checkpoint), and a loop on 2 CPU processes
(gloo) whose record equals a single process's."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import cli_env, free_port

from scoring import UserError

datasets = pytest.importorskip("datasets", reason="the hf extra is not installed")
transformers = pytest.importorskip("transformers", reason="the hf extra is not installed")


def _arrays(run_dir):
    return {p.relative_to(run_dir).as_posix(): np.load(p) for p in sorted((run_dir / "records").glob("*/*.npy"))}


def _text_data(size, seed):
    """Token sequences whose class is whether token 7 occurs: a task a 1-layer BERT learns in steps."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(10, 30, size=(size, 8))
    labels = rng.integers(0, 2, size)
    tokens[labels == 1, rng.integers(0, 8, int(labels.sum()))] = 7
    return datasets.Dataset.from_dict(
        {
            "id": [f"s{seed}-{i}" for i in range(size)],
            "input_ids": tokens.tolist(),
            "attention_mask": np.ones_like(tokens).tolist(),
            "label": labels.tolist(),
        }
    )


def _bert(seed):
    transformers.set_seed(seed)
    config = transformers.BertConfig(
        vocab_size=32,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    return transformers.BertForSequenceClassification(config)


def _args(out, seed, **extra):
    settings = dict(
        output_dir=str(out),
        per_device_train_batch_size=16,
        per_device_eval_batch_size=32,
        num_train_epochs=2,
        learning_rate=2e-2,
        seed=seed,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
    )
    return transformers.TrainingArguments(**{**settings, **extra})


def test_trainer_callback_records_text_members_by_id_and_resumes_from_a_checkpoint(tmp_path):
    from scoring.integrations.hf import RecorderCallback

    train, test = _text_data(64, 0), _text_data(32, 1)
    splits = {"train": train, "test": test}
    trainers = []
    for member in (0, 1):
        callback = RecorderCallback(tmp_path / "run", splits, member=member, every=0.5, record_probs=True)
        trainer = transformers.Trainer(
            model=_bert(member),
            args=_args(tmp_path / f"out{member}", member),
            train_dataset=train,
            callbacks=[callback],
        )
        trainer.train()
        trainers.append(trainer)
    scores = callback.finish()
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert [(c["step"], c["epoch"]) for c in info["checkpoints"]] == [
        (0, 0.0),
        (2, 0.5),
        (4, 1.0),
        (6, 1.5),
        (8, 2.0),
    ]
    assert (
        scores.split("train")["id"].tolist() == train["id"] and scores.split("test")["label"].tolist() == test["label"]
    )
    for member, trainer in enumerate(trainers):  # the last checkpoint holds what the trained model predicts, row by row
        predicted = trainer.predict(test).predictions.argmax(1)
        np.testing.assert_array_equal(
            np.load(tmp_path / "run" / "records" / f"member_00{member}" / "test.pred.npy")[-1], predicted
        )
    assert scores.split("train")["consistency"].mean() > 0.6  # the members learn the task (chance: 0.5; here 0.77)

    # The same member 1, its training saved at step 4: resumed there, the record drops steps 6 and 8
    # and records them again.
    args = _args(tmp_path / "out-resume", 1, save_strategy="steps", save_steps=4)
    first = transformers.Trainer(
        model=_bert(1),
        args=args,
        train_dataset=train,
        callbacks=[RecorderCallback(tmp_path / "resumed", splits, member=1, every=0.5, record_probs=True)],
    )
    first.train()
    expected = _arrays(tmp_path / "resumed")
    resumed = transformers.Trainer(
        model=_bert(1),
        args=args,
        train_dataset=train,
        callbacks=[RecorderCallback(tmp_path / "resumed", splits, member=1, every=0.5, record_probs=True)],
    )
    resumed.train(resume_from_checkpoint=str(tmp_path / "out-resume" / "checkpoint-4"))
    again = _arrays(tmp_path / "resumed")
    assert again.keys() == expected.keys()
    for name, array in expected.items():
        np.testing.assert_array_equal(again[name], array, err_msg=name)
    assert json.loads((tmp_path / "resumed" / "records" / "member_001" / "progress.json").read_text()) == {
        "checkpoints": 5
    }


def test_trainer_callback_records_an_image_model_by_row(tmp_path):
    from sklearn.datasets import load_digits

    from scoring.integrations.hf import RecorderCallback

    digits = load_digits()
    pixels = (digits.images[:, None] / 16).astype(np.float32)
    train = datasets.Dataset.from_dict({"pixel_values": pixels[:96].tolist(), "label": digits.target[:96].tolist()})
    test = datasets.Dataset.from_dict(
        {"pixel_values": pixels[96:128].tolist(), "label": digits.target[96:128].tolist()}
    )
    config = transformers.ViTConfig(
        image_size=8,
        patch_size=4,
        num_channels=1,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=10,
    )
    with pytest.raises(UserError, match="no 'id' column to key its examples by; add one .* or pass id_column=None"):
        RecorderCallback(tmp_path / "run", {"train": train}, member=0).on_train_begin(_args(tmp_path, 0), None, None)
    for member in (0, 1):
        transformers.set_seed(member)
        callback = RecorderCallback(
            tmp_path / "run",
            {"train": train, "test": test},
            member=member,
            every=3,
            unit="step",
            id_column=None,
        )
        transformers.Trainer(
            model=transformers.ViTForImageClassification(config),
            args=_args(tmp_path / "out", member),
            train_dataset=train,
            callbacks=[callback],
        ).train()
    scores = callback.finish()
    steps = [c["step"] for c in json.loads((tmp_path / "run" / "run.json").read_text())["checkpoints"]]
    assert steps == [0, 3, 6, 9, 12]  # 6 steps an epoch, 2 epochs
    assert scores.split("test")["id"].tolist() == [f"test/{row}" for row in range(32)]


lightning = pytest.importorskip("lightning.pytorch", reason="the lightning extra is not installed")


class _Net(lightning.LightningModule):
    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return torch.nn.functional.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def _digits_sets():
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data[:400], dtype=torch.float32) / 16
    y = torch.tensor(digits.target[:400])
    return torch.utils.data.TensorDataset(x[:300], y[:300]), torch.utils.data.TensorDataset(x[300:], y[300:])


def _fit(tmp_path, member, run, max_epochs, ckpt_path=None, save=False):
    from scoring.integrations.lightning import RecorderCallback

    train, test = _digits_sets()
    callback = RecorderCallback(
        tmp_path / run,
        {"train": train, "test": test},
        member=member,
        every=0.5,
        ids={"train": np.arange(300), "test": np.arange(300, 400)},
    )
    saver = (
        lightning.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
        if save
        else None
    )
    trainer = lightning.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=save,
        callbacks=[callback, *([saver] if save else [])],
    )
    torch.manual_seed(100 + member)
    loader = torch.utils.data.DataLoader(train, batch_size=50, shuffle=True)
    trainer.fit(_Net(member), loader, ckpt_path=ckpt_path)
    return callback


def test_lightning_callback_records_members_and_resumes_from_a_checkpoint(tmp_path):
    for member in (0, 1):
        callback = _fit(tmp_path, member, "run", max_epochs=2, save=member == 1)
    scores = callback.finish()
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert [(c["step"], c["epoch"]) for c in info["checkpoints"]] == [
        (0, 0.0),
        (3, 0.5),
        (6, 1.0),
        (9, 1.5),
        (12, 2.0),
    ]
    assert scores.split("test")["id"].tolist() == [str(i) for i in range(300, 400)]
    assert scores.split("train")["accessibility"].mean() > 0.5
    # member 1 again from its checkpoint after epoch 1 (step 6): 3 checkpoints kept, 2 recorded again
    expected = _arrays(tmp_path / "run")
    checkpoint = next(path for path in (tmp_path / "ckpt").iterdir() if "epoch=0" in path.name)
    _fit(tmp_path, 1, "run", max_epochs=2, ckpt_path=str(checkpoint))
    again = _arrays(tmp_path / "run")
    for name in expected:
        if (
            "member_001" in name
        ):  # the resumed epoch draws other batches than the uninterrupted one: same shapes, rows 0-2 kept
            assert again[name].shape == expected[name].shape
            np.testing.assert_array_equal(again[name][:3], expected[name][:3], err_msg=name)
    assert json.loads((tmp_path / "run" / "records" / "member_001" / "progress.json").read_text()) == {"checkpoints": 5}


DDP_SCRIPT = textwrap.dedent("""
    import os, sys
    import numpy as np, torch
    from scoring.integrations.distributed import DistributedRecorder

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        torch.distributed.init_process_group("gloo")
    torch.set_default_dtype(torch.float64)  # a shard's rows and the whole split's round alike to float16
    rng = np.random.default_rng(0)  # 10 Gaussian classes in 64 dimensions
    y = torch.tensor(rng.integers(0, 10, 1797))
    x = torch.tensor(rng.normal(size=(10, 64)))[y] + torch.tensor(rng.normal(scale=2.0, size=(1797, 64)))
    splits = {"train": np.arange(0, 1500), "test": np.arange(1500, 1797)}
    labels = {s: y[i].numpy() for s, i in splits.items()}
    recorder = DistributedRecorder(sys.argv[1], labels, ids=splits, record_probs=True)
    for member in range(2):
        torch.manual_seed(member)
        model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
        # Every rank steps on the same batches, so every rank holds the single process's model;
        # only the recording is sharded.
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for step in range(7):
            if step % 3 == 0:
                with torch.no_grad():
                    for split, rows in splits.items():
                        mine = recorder.shard(len(rows))
                        for batch in np.array_split(mine, 3):  # by id for train, by position for test
                            key = {"ids": rows[batch]} if split == "train" else {"index": batch}
                            recorder.update(member, split, logits=model(x[rows[batch]]), **key)
                recorder.checkpoint(member, epoch=step / 6, step=step)
            batch = torch.randperm(1500, generator=torch.Generator().manual_seed(step))[:100]
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    scores = recorder.finish()
    print(f"rank {recorder.rank} of {recorder.world}: {len(scores.table)} rows")
""")


def test_two_processes_record_what_one_process_records(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = cli_env(tmp_path)
    single = subprocess.run(
        [sys.executable, script, tmp_path / "one"], env=env, capture_output=True, text=True, timeout=300
    )
    assert single.returncode == 0, single.stderr
    port = str(free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, script, tmp_path / "two"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={
                **env,
                "RANK": str(rank),
                "WORLD_SIZE": "2",
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": port,
            },
        )
        for rank in range(2)
    ]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
    assert "rank 1 of 2: 1797 rows" in outputs[1][0]  # every rank gets the scores
    one, two = _arrays(tmp_path / "one"), _arrays(tmp_path / "two")
    assert one.keys() == two.keys() and len(one) == 16
    for name, array in one.items():
        np.testing.assert_array_equal(two[name], array, err_msg=name)
    from scoring import Scores

    pd.testing.assert_frame_equal(Scores.load(tmp_path / "two").table, Scores.load(tmp_path / "one").table)


def test_a_missing_library_names_the_extra_to_install(tmp_path):
    code = (
        "import sys\nclass Block:\n    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'transformers': raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\nimport scoring.integrations.hf\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=cli_env(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert (
        "ImportError: The Hugging Face Trainer callback needs the 'transformers' package; install it with "
        "pip install 'agreement-curriculum[hf]'."
    ) in proc.stderr
