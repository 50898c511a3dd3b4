"""experiments/reproduce.py: the verdicts it writes are computed from the runs' tables, and the
README table is replaced between its markers without touching the rest."""

import importlib.util
import sys

import pandas as pd
import pytest
from conftest import ROOT


@pytest.fixture
def reproduce(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("reproduce", ROOT / "experiments" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "reproduce", module)  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "FIGURES", tmp_path / "figures")  # never write into the repository
    return module


def test_agreement_finding_reports_the_peak_beyond_the_class_null(reproduce, score_run):
    summary = pd.read_csv(score_run / "summary.csv")
    test = summary[(summary.split == "test") & (summary.checkpoint > 0)]
    excess = test.at0_observed + test.at1_observed - test.at0_class_null - test.at1_class_null
    found = reproduce.agreement_finding(score_run, "digits agreement", "Fig. 1", expect_bimodal=True)
    assert f"excess {excess.max():+.3f}" in found.numbers
    assert found.reproduces.startswith("yes" if (excess.max() > 0.05) else "partly")
    assert found.figure.exists() and found.figure.parent.name == "figures"
    flipped = reproduce.agreement_finding(score_run, "digits agreement", "Fig. 1", expect_bimodal=False)
    assert flipped.reproduces.split(":")[0] != found.reproduces.split(":")[0]


def test_factor_finding_counts_the_signs_construction_predicts(reproduce, tmp_path):
    run = tmp_path / "run"
    (run / "figures").mkdir(parents=True)
    (run / "figures" / "factors.png").write_bytes(b"png")
    rows = [
        ("size", 0.30, "+", True),
        ("contrast", 0.25, "+", True),
        ("noise", 0.10, "-", False),
        ("clutter", -0.20, "-", True),
        ("x", 0.01, "", None),
    ]
    table = pd.DataFrame(
        [
            {"factor": f, "column": "accessibility", "split": "test", "spearman_r": r, "expected": e, "as_built": a}
            for f, r, e, a in rows
        ]
    )
    table.to_csv(run / "factors.csv", index=False)
    found = reproduce.factor_finding(run, "known difficulty", "none")
    assert found.reproduces == "partly: 3 of 4 factors with the sign construction predicts"
    assert "size +0.30" in found.numbers and "noise +0.10" in found.numbers and "x +" not in found.numbers


def test_write_readme_replaces_only_the_table(reproduce, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n\n{reproduce.MARKERS[0]}\nold table\n{reproduce.MARKERS[1]}\n\noutro\n")
    finding = reproduce.Finding("a finding", "Fig. 1", tmp_path / "figures" / "a.png", "r 0.9", "yes: because")
    reproduce.write_readme([finding], readme)
    text = readme.read_text()
    assert text.startswith("intro\n\n") and text.endswith("\n\noutro\n") and "old table" not in text
    assert "| a finding | Fig. 1 | [figure](figures/a.png) | r 0.9 | yes: because |" in text


def test_write_readme_replaces_rows_by_name_and_keeps_the_others(reproduce, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n\n{reproduce.MARKERS[0]}\n{reproduce.MARKERS[1]}\n")
    figure = tmp_path / "figures" / "a.png"
    reproduce.write_readme(
        [
            reproduce.Finding("digits", "Fig. 1", figure, "|x| 0.9", "yes"),
            reproduce.Finding("shapes", "none", figure, "r 0.5", "partly"),
        ],
        readme,
    )
    # one group run again: its rows replace theirs in place, a new one comes last
    reproduce.write_readme(
        [
            reproduce.Finding("fashion", "Fig. 12", figure, "r 0.8", "yes"),
            reproduce.Finding("digits", "Fig. 1", figure, "|x| 0.7", "no"),
        ],
        readme,
    )
    lines = readme.read_text().splitlines()
    rows = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert [row.split(" | ")[0][2:] for row in rows] == ["digits", "shapes", "fashion"]
    assert "|x| 0.7 | no |" in rows[0] and "r 0.5 | partly |" in rows[1]
