"""Tests of the review page (index.html) on synthetic results, and in a real browser.

The browser test opens the page in headless Chromium (Debian's ``chromium``, driven by Playwright):
every milestone's section is there, the console stays clean, every image decodes and no request leaves
the file. It is skipped where Chromium or Playwright is missing (``make test`` installs both where
apt-get is available).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from dlhistory import catalogue, comparison
from dlhistory.comparison import Comparison, Review, ReviewEntry, decide
from dlhistory.milestones import alexnet
from dlhistory.report import figures, i18n, page
from dlhistory.report.page import short_reason
from dlhistory.spec import Verdict

ALEXNET = alexnet.MILESTONE
MISSING = ("fashion-mnist train-images-idx3-ubyte.gz not found or corrupt (looked in: /a, /b); download it "
           "from https://example.org/data/train-images-idx3-ubyte.gz into /home/u/.cache/dlhistory/"
           "fashion-mnist/ or set DLHISTORY_DATA to a folder holding train-images-idx3-ubyte.gz")


def fake_run(folder: Path, seed: int, accuracy: float) -> dict:
    """A finished run's result, with validation records whose loss rises while accuracy improves."""
    folder.mkdir(parents=True)
    curve = [(0.9, 0.70), (0.5, 0.80), (0.4, 0.85), (0.5, 0.87), (0.6, 0.88)]  # (loss, accuracy)
    records = [{"step": 100 * i, "split": "val", "loss": loss, "accuracy": acc}
               for i, (loss, acc) in enumerate(curve)]
    (folder / "metrics.jsonl").write_text("\n".join(map(json.dumps, records)) + "\n")
    return {"test_accuracy": accuracy, "val_accuracy": accuracy, "train_seconds": 10.0, "wall_seconds": 12.0,
            "train_flops": 1e12, "flops_per_s": 1e11, "seed": seed, "run_dir": str(folder),
            "commit": "0123456789abcdef0123", "threads": 1, "precision": "fp32",
            "versions": {"torch": "2.13.0+cpu", "cpu": "Test CPU 9000"}}


def alexnet_comparison(tmp_path: Path) -> Comparison:
    results = {variant: [fake_run(tmp_path / f"{variant}-{seed}", seed, acc + 0.01 * seed)
                         for seed in (0, 1, 2)]
               for variant, acc in (("cnn", 0.93), ("svm", 0.86), ("hog-svm", 0.89))}
    c = Comparison(ALEXNET, "cpu", [0, 1, 2], results)
    c.verdict = decide(ALEXNET, "cpu", 3, results)
    c.paths = {"figure": tmp_path / "alexnet.png"}
    figures.bar_chart(c, c.paths["figure"])
    return c


def a_review(tmp_path: Path, lang: str = "en") -> tuple[Review, list]:
    """AlexNet compared, DQN skipped for missing data, the rest still to come."""
    entries = [ReviewEntry(ALEXNET, alexnet_comparison(tmp_path)),
               ReviewEntry(catalogue.get("dqn"), skipped=MISSING)]
    return Review("cpu", None, entries, seconds=60.0, lang=lang), list(catalogue.CATALOGUE[2:])


@pytest.fixture
def written(tmp_path: Path) -> Path:
    review, pending = a_review(tmp_path)
    return page.write_page(review, tmp_path / "review", "en", pending)


def test_the_page_has_a_section_per_milestone_in_timeline_order(written: Path):
    text = written.read_text()
    ids = re.findall(r'<section class="milestone" id="([a-z0-9]+)"', text)
    assert ids == [m.key for m in catalogue.CATALOGUE]
    assert text.count('class="cell') == len(catalogue.CATALOGUE)  # the summary strip


def test_the_page_shows_verdicts_claims_and_provenance(written: Path):
    text = written.read_text()
    assert '<span class="badge holds">holds</span>' in text
    assert '<span class="badge skipped">skipped</span>' in text and "pending" in text
    assert ALEXNET.claim.paper.split(":")[0] in text
    assert "Test CPU 9000" in text and "0123456789ab" in text and "2.13.0+cpu" in text
    assert "dlhistory compare alexnet --preset cpu --seeds 3" in text
    assert text.count("<circle") == 9  # three seeds of three variants, one dot each


def test_the_page_marks_the_components_the_milestone_changed(written: Path):
    section = written.read_text().split('id="alexnet"')[1].split("</section>")[0]
    changed = re.findall(r'<div class="card changed"><h4>(\w+)', section)
    assert changed == list(ALEXNET.changes)
    assert "baseline (svm)" in section


def test_the_page_is_self_contained(written: Path):
    text = written.read_text()
    sources = re.findall(r'\ssrc="([^"]*)"', text)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<script" not in text and "<link" not in text and "@import" not in text
    assert "prefers-color-scheme: dark" in text and "@media print" in text


def test_the_page_shows_the_loss_as_a_proxy_from_the_runs(written: Path):
    lens = written.read_text().split('id="lens"')[1].split("</section>")[0]
    assert "Rising loss, improving accuracy" in lens
    assert "rose to 0.600" in lens and "85.00% to 88.00%" in lens


def test_a_skipped_milestone_gets_a_short_reason_and_the_command_that_fixes_it(written: Path):
    section = written.read_text().split('id="dqn"')[1].split("</section>")[0]
    assert "fashion-mnist train-images-idx3-ubyte.gz not found" in section
    assert ("curl -fL --create-dirs -o /home/u/.cache/dlhistory/fashion-mnist/train-images-idx3-ubyte.gz "
            "https://example.org/data/train-images-idx3-ubyte.gz") in section


def test_short_reason_keeps_other_reasons_short():
    what, fix = short_reason("Atari needs ale-py (its wheel ships the ROMs): pip install ale-py")
    assert what == fix == "Atari needs ale-py (its wheel ships the ROMs): pip install ale-py"
    assert len(short_reason("x" * 500)[0]) <= 120


def test_korean_renders_the_labels_and_the_lectures_sentences(tmp_path: Path):
    review, pending = a_review(tmp_path, "ko")
    text = page.write_page(review, tmp_path / "ko", "ko", pending).read_text()
    assert '<html lang="ko">' in text
    assert i18n.LABELS["ko"]["components"] in text and "성립" in text
    for m in catalogue.CATALOGUE:
        assert i18n.LECTURE_KO[m.key] in text
    assert set(i18n.LECTURE_KO) == {m.key for m in catalogue.CATALOGUE}
    assert set(i18n.LABELS["ko"]) == set(i18n.LABELS["en"])
    assert i18n.LENSES["ko"]["rising_loss"][0] in text  # the runs' lens, in Korean too
    for kind, (_, sentence) in i18n.LENSES["en"].items():  # both languages fill the same numbers
        korean = i18n.LENSES["ko"][kind][1]
        assert set(re.findall(r"{(\w+)}", sentence)) == set(re.findall(r"{(\w+)}", korean))


def test_the_review_rewrites_the_page_after_every_milestone(tmp_path: Path, monkeypatch):
    milestones = catalogue.CATALOGUE[:3]
    seen = []

    def fake_runs(batches, workers, log, reuse):  # every run of every milestone, in the timeline's order
        for k, batch in enumerate(batches):
            for i in range(len(batch.runs)):
                yield k, i, {"status": "complete"}

    def fake_conclude(self, finished, out_dir, options):
        seen.append(re.findall(r'<span class="badge (\S+)">', (tmp_path / "index.html").read_text()))
        return Comparison(self.comparison.milestone, "smoke", [0],
                          verdict=Verdict("not judged", "smoke only proves the code runs"))

    monkeypatch.setattr(comparison, "execute_all", fake_runs)
    monkeypatch.setattr(comparison.Experiment, "conclude", fake_conclude)
    comparison.review(milestones, "smoke", 1, log=lambda _: None, out_dir=tmp_path, workers=1)
    strips = [s[:len(milestones)] for s in seen]  # the strip comes first: one badge per milestone
    assert strips == [["pending"] * 3, ["not-judged", "pending", "pending"],
                      ["not-judged", "not-judged", "pending"]]
    final = (tmp_path / "index.html").read_text()
    assert "pending" not in re.findall(r'<span class="badge (\S+)">', final)


# --------------------------------------------------------------------------------------------------
# In a real browser


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def test_the_page_in_a_real_browser(written: Path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (make test does)")
    if not Path(CHROMIUM).is_file():
        pytest.skip("no Chromium: apt-get install chromium (make test does where apt-get is available)")
    errors, requests = [], []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            tab = browser.new_page()
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.on("request", lambda r: requests.append(r.url))
            tab.goto(written.as_uri(), wait_until="load")
            sections = tab.eval_on_selector_all("section.milestone", "s => s.map(x => x.id)")
            widths = tab.eval_on_selector_all("img", "s => s.map(i => i.complete ? i.naturalWidth : 0)")
            dark = tab.evaluate("matchMedia('(prefers-color-scheme: dark)').media")
        finally:
            browser.close()
    assert sections == [m.key for m in catalogue.CATALOGUE]
    assert widths and all(w > 0 for w in widths), widths
    assert not errors, errors
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
    assert dark == "(prefers-color-scheme: dark)"


def test_utilisation_is_measured_against_this_machines_peak(tmp_path: Path, monkeypatch):
    from dlhistory.records import cpu_model
    from dlhistory.report import machine

    monkeypatch.setenv("DLHISTORY_CACHE", str(tmp_path))
    calls = []
    monkeypatch.setattr(machine, "matmul_gflops", lambda dtype: calls.append(dtype) or 100.0)
    here = {"flops_per_s": 25e9, "precision": "fp32", "threads": 1, "versions": {"cpu": cpu_model()}}
    assert machine.utilisation(here) == pytest.approx(0.25)
    assert machine.utilisation({**here, "flops_per_s": 50e9}) == pytest.approx(0.5)
    assert len(calls) == 1  # measured once, then read from the cache
    assert json.loads((tmp_path / "machine.json").read_text())
    assert machine.utilisation({**here, "versions": {"cpu": "another CPU"}}) is None
    assert machine.utilisation({**here, "flops_per_s": None}) is None
