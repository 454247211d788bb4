"""The gan milestone: DCGAN's networks and losses, smoke runs of the GAN and its VAE baseline, a learning
test in the classifier's features, the claim's judge, and the generate tool."""

from __future__ import annotations

import math

import matplotlib.image
import pytest
import torch

import dlhistory
from dlhistory.cli import main
from dlhistory.milestones import gan
from dlhistory.spec import Verdict

SMALL = {"data.train_size": 20000, "model.width": 16, "model.latent": 32, "algorithm.batch_size": 64,
         "algorithm.measure.samples": 500, "algorithm.measure.eval_samples": 500}


@pytest.fixture(scope="module")
def runs(run_env_vars, tmp_path_factory):
    """One smoke run of each variant (the classifier that measures them is trained once, cached)."""
    folder = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in run_env_vars.items():
            mp.setenv(name, value)
        results = {v: dlhistory.run("gan", preset="smoke", variant=v, runs_dir=str(folder), progress=False,
                                    evals=2) for v in ("gan", "vae")}
    return folder, results


def test_the_networks_have_dcgans_shapes_and_ranges():
    config = gan.DCGANConfig(latent=16, width=8)
    G, D = gan.Generator(config), gan.Discriminator(config)
    images = G(torch.randn(5, 16))
    assert images.shape == (5, 1, 28, 28) and images.abs().max() <= 1
    assert D(images).shape == (5,)
    assert not any(isinstance(m, (torch.nn.MaxPool2d, torch.nn.AvgPool2d)) for m in D.modules())  # strided
    assert isinstance(D.body[0], torch.nn.Conv2d) and isinstance(D.body[1], torch.nn.LeakyReLU)  # no BN first


def test_the_generator_losses_share_a_fixed_point_but_not_their_gradients():
    """Where D rejects G's samples (logit -5), the minimax loss's gradient nearly vanishes; the
    non-saturating one's does not (Goodfellow et al., section 3)."""
    grads = {}
    for kind in ("minimax", "non-saturating"):
        logits = torch.tensor([-5.0], requires_grad=True)
        gan.Adversarial(gan.AdversarialConfig(kind)).generator(logits).backward()
        grads[kind] = abs(float(logits.grad))
    assert grads["minimax"] < 0.01 < 0.9 < grads["non-saturating"]
    d = gan.Adversarial.discriminator(torch.tensor([10.0]), torch.tensor([-10.0]))
    assert float(d) < 1e-3  # a perfect discriminator pays nothing


def test_smoke_runs_of_both_variants_report_the_measures(runs):
    _, results = runs
    for result in results.values():
        assert result["status"] == "complete" and result["test_n"] == 64
        assert math.isfinite(result["test_fd_classifier"]) and 0 <= result["test_precision"] <= 1
    assert set(results["gan"]["versions"]) and results["gan"]["parameters"] > 0


def test_a_snapshot_is_a_grid_of_64_samples_of_fixed_noise(tmp_path):
    """What a run will save at each evaluation (once the loop calls the hook): 8 by 8 samples, 1-pixel
    gaps, the same z every time, so two snapshots of the same weights are equal."""
    procedure = object.__new__(gan.AdversarialTraining)  # only the generator is needed to draw
    procedure.G = gan.Generator(gan.DCGANConfig(latent=16, width=8))
    procedure.snapshot(tmp_path, 3)
    procedure.snapshot(tmp_path / "again", 3)
    first, second = (matplotlib.image.imread(d / "samples" / "step-000004.png") for d in (tmp_path,
                                                                                          tmp_path / "again"))
    assert first.shape[:2] == (8 * 29 + 1, 8 * 29 + 1) and (first == second).all()


def test_a_short_budget_brings_the_samples_towards_the_data(run_env, tmp_path):
    """300 steps of a small DCGAN: the Fréchet distance in the classifier's features falls below a third
    of the untrained generator's (measured: 1269 -> 316), and the samples cover several classes."""
    untrained = dlhistory.run("gan", preset="smoke", runs_dir=str(tmp_path), progress=False, evals=1,
                              overrides={**SMALL, "algorithm.steps": 1})
    trained = dlhistory.run("gan", preset="smoke", runs_dir=str(tmp_path), progress=False, evals=1,
                            overrides={**SMALL, "algorithm.steps": 300})
    assert trained["val_fd_classifier"] < untrained["val_fd_classifier"] / 3, (trained, untrained)
    assert trained["val_class_coverage"] > 2.0  # bits: at least four classes' worth


# ------------------------------------------------------------------------------------------------
# The judge, on made-up results


def _results(fid=(30, 32, 31), fid_vae=(60, 62, 61), precision=0.7, precision_vae=0.5):
    def runs(fids, p):
        return [{"test_fid": f, "test_precision": p, "test_recall": 0.3, "test_n": 2000} for f in fids]

    return {"gan": runs(fid, precision), "vae": runs(fid_vae, precision_vae)}


def test_the_claim_holds_on_results_that_meet_it():
    verdict = gan.judge(gan.MILESTONE, "cpu", _results())
    assert verdict.holds and "n = 2000" in verdict.reason and "recall" in verdict.reason, verdict.reason


@pytest.mark.parametrize(("results", "said"), [
    (_results(fid=(40, 40, 40)), "<= 0.6 x"),
    (_results(precision=0.4), "precision"),
    (_results(fid=(30, math.nan, 31)), "diverged"),
])
def test_the_claim_fails_where_it_should(results, said):
    verdict = gan.judge(gan.MILESTONE, "cpu", results)
    assert verdict.outcome == "FAILS" and said in verdict.reason, verdict.reason


def test_full_also_asks_the_papers_fid():
    assert gan.judge(gan.MILESTONE, "full", _results(fid=(25, 25, 25))).outcome == "FAILS"
    assert gan.judge(gan.MILESTONE, "full", _results(fid=(20, 20, 20))).holds


def test_the_claim_is_not_judged_without_the_baseline():
    verdict = gan.judge(gan.MILESTONE, "cpu", {"gan": _results()["gan"]})
    assert verdict == Verdict("not judged", "no runs of vae")


# ------------------------------------------------------------------------------------------------
# generate


@pytest.mark.parametrize(("argv", "images"), [(["--n", "10"], (3, 4)),
                                              (["--interpolate", "--n", "3"], (3, 8)),
                                              (["--variant", "vae", "--n", "4"], (2, 2))])
def test_generate_draws_a_grid(runs, tmp_path, capsys, argv, images):
    folder, _ = runs
    out = tmp_path / "grid.png"
    assert main(["generate", "gan", *argv, "--out", str(out), "--runs-dir", str(folder)]) == 0
    picture = matplotlib.image.imread(out)
    assert picture.shape[:2] == (images[0] * 29 + 1, images[1] * 29 + 1)
    assert "gan: " in capsys.readouterr().err


def test_generate_is_reproducible_by_seed(runs, tmp_path):
    folder, _ = runs
    pictures = []
    for name in ("a.png", "b.png"):
        argv = ["generate", "gan", "--seed", "3", "--out", str(tmp_path / name), "--runs-dir", str(folder)]
        assert main(argv) == 0
        pictures.append(matplotlib.image.imread(tmp_path / name))
    assert (pictures[0] == pictures[1]).all()


@pytest.mark.parametrize(("argv", "said"), [
    (["--n", "0"], "--n 0"),
    (["--n", "200", "--interpolate"], "1 to 128 rows"),
    (["--out", "x.jpg"], "give a .png"),
    (["--out", "/no/such/folder/x.png"], "does not exist"),
    (["--seed", "-1"], "--seed -1"),
    (["--checkpoint", "/no/such/run"], "not a run directory"),
])
def test_generate_bad_input_is_one_line(runs, capsys, argv, said):
    folder, _ = runs
    code = main(["generate", "gan", *argv, "--runs-dir", str(folder)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and said in err and len(err.splitlines()) == 1, err
