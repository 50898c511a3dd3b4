"""The ``curriculum learners`` stage: classical learners as a collection (Hacohen et al. 2020, appendix F).

Hacohen et al. 2020 train an SVM, k-NN, a random forest, AdaBoost over linear learners and others on the
same data and finds that the examples they get right are the ones networks learn first. Here each
learner is one member of a collection written as a score run, so it has its own agreement report
and ``curriculum compare`` puts it beside a network collection. A learner has no epochs, so its
"checkpoints" are fits on growing nested parts of the train set (a learning curve): checkpoint 0
is the class prior (no data seen: predict the most frequent class), checkpoint k a fit on the first
``fractions[k-1]`` of one fixed random permutation of the train set; the run's "epoch" of a
checkpoint is that fraction. Accessibility is then how early in the data, and for how many of the
learners, an example is right. Images are flattened pixels in [0, 1].
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

from curriculum.config.stages import LearnersConfig
from curriculum.data.datasets import image_fingerprints, load_dataset
from curriculum.reporting.report import write_report
from scoring.recorder import Recorder
from scoring.records import SPLITS, default_run_dir, read_run_info, update_run


def _learner(name: str, seed: int):
    """A fresh scikit-learn classifier with ``predict_proba`` (imported on use: sklearn is heavy)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import AdaBoostClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    return {
        "svm": lambda: make_pipeline(
            StandardScaler(), CalibratedClassifierCV(SVC(kernel="rbf", random_state=seed), ensemble=False)
        ),
        "knn": lambda: KNeighborsClassifier(n_neighbors=5),
        "random-forest": lambda: RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1),
        "adaboost": lambda: AdaBoostClassifier(LogisticRegression(max_iter=200), n_estimators=10, random_state=seed),
        "logistic": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
        "decision-tree": lambda: DecisionTreeClassifier(random_state=seed),
        "naive-bayes": lambda: GaussianNB(),
    }[name]()


def _probabilities(model, x: np.ndarray, num_classes: int) -> np.ndarray:
    """[M, K] probabilities; classes the model never saw get 0."""
    out = np.zeros((len(x), num_classes), dtype=np.float32)
    out[:, model.classes_] = model.predict_proba(x)
    return out


def learners(config: LearnersConfig) -> Path:
    """Fit every learner on every fraction and write a score run (``runs/<dataset>-learners``)."""
    config.validate()
    names, fractions = config.learners, config.fractions
    dataset = load_dataset(
        config.dataset, label_noise=config.label_noise, noise_seed=config.seed, data_dir=config.data_dir
    )
    run_dir = Path(config.out) if config.out else default_run_dir(dataset.name + "-learners")
    k = dataset.num_classes
    x = {
        split: dataset.split(split).images.reshape(len(dataset.split(split)), -1).astype(np.float32) / 255
        for split in SPLITS
    }
    y = {split: dataset.split(split).labels for split in SPLITS}
    recorder = Recorder(
        run_dir,
        labels=y,
        ids={s: dataset.split(s).ids for s in SPLITS},
        images={s: dataset.split(s).images for s in SPLITS},
        num_classes=k,
        dataset=dataset.name,
        fingerprint=dataset.fingerprint,
        arch="learners:" + ",".join(names),
    )
    order = np.random.default_rng(config.seed).permutation(len(y["train"]))
    prior = np.bincount(y["train"], minlength=k) / len(y["train"])
    started = time.perf_counter()
    for member, name in enumerate(names):
        for split in SPLITS:  # checkpoint 0: no data seen, the class prior
            recorder.update(member, split, probs=np.tile(prior, (len(y[split]), 1)))
        recorder.checkpoint(member, epoch=0.0)
        for fraction in fractions:
            part = order[: max(2 * k, round(fraction * len(order)))]
            with warnings.catch_warnings():  # the SVM's 5 calibration folds on a small part: expected, not a fault
                warnings.filterwarnings("ignore", "The least populated class in y has only", UserWarning)
                model = _learner(name, config.seed).fit(x["train"][part], y["train"][part])
            for split in SPLITS:
                recorder.update(member, split, probs=_probabilities(model, x[split], k))
            recorder.checkpoint(member, epoch=fraction)
        if not config.quiet:
            print(f"{name}: test accuracy {np.mean(model.predict(x['test']) == y['test']):.3f} on the whole train set")
    recorder.finish()
    update_run(
        run_dir,
        settings=config.settings(),
        dataset={**read_run_info(run_dir)["dataset"], "images": image_fingerprints(dataset)},
        checkpoint_unit="of the train set",
        seconds=round(time.perf_counter() - started, 1),
    )
    write_report(run_dir, dataset, read_run_info(run_dir), quiet=config.quiet)
    return run_dir
