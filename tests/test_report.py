"""report.md of a score run: opening sentences computed from the run, one section per stage kept
across reruns, and the gallery and data-map figures."""

import shutil

import pandas as pd
import pytest
from conftest import SMALL_SCORE, run_cli

from curriculum.reporting.report import story, write_section
from scoring import Scores


def test_write_section_replaces_its_own_section_and_keeps_the_rest(tmp_path):
    report = tmp_path / "report.md"
    report.write_text("# title\n\nopening\n")
    write_section(report, "stats", "first")
    write_section(report, "compare-b", "other")
    write_section(report, "stats", "second")
    text = report.read_text()
    assert text.startswith("# title\n\nopening\n") and "first" not in text
    assert text.index("second") < text.index("other") and text.count("<!-- section: stats -->") == 1


def test_the_report_opens_with_sentences_computed_from_the_run(score_run):
    scores = Scores.load(score_run)
    summary = pd.read_csv(score_run / "summary.csv")
    sentences = story(summary, scores, [str(k) for k in range(10)], 3, "small-st-vgg", "digits")
    report = (score_run / "report.md").read_text()
    assert report.split("\n")[2] == " ".join(sentences)
    test = summary[(summary.split == "test") & (summary.checkpoint > 0)]
    excess = test.at0_observed + test.at1_observed - test.at0_class_null - test.at1_class_null
    peak = test.loc[excess.idxmax()]
    assert f"{peak.at1_observed:.1%} of the test examples are right for every member" in sentences[1]
    assert f"{excess.max():+.1%} of the examples beyond the class-conditional null" in sentences[1]
    rel = scores.reliability.loc["accessibility"]
    assert f"{rel['train']:.2f} (train) and {rel['test']:.2f} (test)" in sentences[2]
    by_class = scores.split("train").groupby("label")["accessibility"].mean()
    assert f"Easiest class: {by_class.idxmax()} (mean accessibility {by_class.max():.2f})" in sentences[3]
    for name in ("gallery.png", "data_map.png", "consistency_histograms.png", "agreement_curve.png"):
        assert (score_run / "figures" / name).stat().st_size > 10_000
        assert f"(figures/{name})" in report


def test_a_rerun_of_the_score_stage_keeps_the_later_sections(score_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(score_run, run)
    write_section(run / "report.md", "stats", "## Image statistics\n\nkept")
    proc = run_cli(["score", *[a for a in SMALL_SCORE if a != "--quiet"], "--out", run], tmp_path)
    text = (run / "report.md").read_text()
    assert text.count("<!-- section: score -->") == 1 and "kept" in text
    # The disk plan first, then the story of the run (the scores were recomputed)
    assert proc.stdout.startswith("The record takes") and "\n3 members of `small-st-vgg` on digits reach" in proc.stdout


def test_stages_adding_sections_at_the_same_time_lose_none(tmp_path):
    """Two processes each add 40 sections to one report at once: every section survives (without
    the lock, one process's read-modify-write would drop the other's newest sections)."""
    import subprocess
    import sys

    from conftest import cli_env

    report = tmp_path / "report.md"
    code = (
        "import sys; from pathlib import Path; from curriculum.reporting.report import write_section\n"
        "for k in range(40): write_section(Path(sys.argv[1]), f'{sys.argv[2]}-{k}', 'x' * 2000)"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(report), name], env=cli_env(tmp_path)) for name in "ab"]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    text = report.read_text()
    assert all(f"<!-- section: {name}-{k} -->" in text for name in "ab" for k in range(40))


@pytest.mark.parametrize(
    "first, n, ticks",
    [
        (0, 3, [0, 1, 2, 3]),
        (0, 8, [0, 2, 4, 6, 8]),
        (0, 12, [0, 2, 4, 6, 8, 10, 12]),
        (0, 7, [0, 2, 4, 7]),
        (0, 100, [0, 20, 40, 60, 80, 100]),
        (1, 12, [2, 4, 6, 8, 10, 12]),
        (1, 2, [1, 2]),
    ],
)
def test_consistency_ticks_are_evenly_spaced_and_end_at_n(first, n, ticks):
    from curriculum.reporting.figures import fraction_ticks

    assert fraction_ticks(first, n) == ticks
