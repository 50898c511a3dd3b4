"""The scoring API works where torch, torchvision, scipy, OpenCV, numba and scikit-learn are not
installed: a subprocess whose imports of them fail reads, aligns, exports and records scores."""

import subprocess
import sys
import textwrap

from conftest import ROOT

BLOCKED = ("torch", "torchvision", "scipy", "cv2", "numba", "sklearn", "skimage", "accelerate", "matplotlib")

SCRIPT = textwrap.dedent("""
    import sys

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not installed (blocked by the test)")

    sys.meta_path.insert(0, Block())
    import numpy as np
    from scoring import Recorder, Scores
    from scoring.formats import export, read_scores

    scores = Scores.load(RUN)
    aligned = scores.align(np.arange(1797))
    assert aligned.count == 1797, aligned
    export(RUN, OUT + "/s.csv", "csv")
    assert read_scores(OUT + "/s.csv").direction == "higher"
    recorder = Recorder(OUT + "/rec", labels={"train": np.array([0, 1])})
    for member in range(2):
        for k in range(2):
            recorder.update(member, "train", logits=np.eye(2))
            recorder.checkpoint(member)
    assert recorder.finish().column("accessibility").tolist() == [1.0, 1.0]
    loaded = sorted(name.split(".")[0] for name in sys.modules)
    assert not set(BLOCKED) & set(loaded), loaded
    print("light ok")
""")


def test_scoring_needs_no_training_stack(score_run, tmp_path):
    code = f"BLOCKED = {BLOCKED!r}\nRUN = {str(score_run)!r}\nOUT = {str(tmp_path)!r}\n{SCRIPT}"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "light ok" in proc.stdout, proc.stderr
