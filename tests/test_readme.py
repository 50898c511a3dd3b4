"""Every ```python block of the README runs as written, each in a fresh namespace, in a folder
that holds a finished score run at runs/digits (bash blocks are commands, not run here)."""

import re
import shutil

import pytest
from conftest import ROOT

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_has_python_blocks_and_no_outside_links():
    assert len(BLOCKS) >= 4
    assert "../shared" not in (ROOT / "README.md").read_text()
    assert (ROOT / "docs" / "REFERENCE.md").exists()


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_python_block_runs(block, score_run, tmp_path, monkeypatch):
    shutil.copytree(score_run, tmp_path / "runs" / "digits")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CURRICULUM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    exec(compile(block, "README.md", "exec"), {"__name__": "__readme__"})
