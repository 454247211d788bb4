"""How generated samples are measured (``measures/``): the Fréchet distance against its closed form,
precision and recall on point clouds with known answers, class coverage, and the Inception-v3 weights
(their checksum, deterministic features)."""

from __future__ import annotations

import hashlib
import math
import threading

import numpy as np
import pytest
import torch

from dlhistory.errors import DataError
from dlhistory.measures import generative, inception


def test_frechet_distance_of_two_gaussians_has_its_closed_form():
    """Diagonal covariances: ||mu1 - mu2||^2 + sum (s1 + s2 - 2 sqrt(s1 s2))."""
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = rng.uniform(0.5, 2, 6), rng.uniform(0.5, 2, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    distance = generative.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    assert distance == pytest.approx(expected, rel=1e-9)
    # A full covariance, rotated the same way in both: the distance does not change.
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    rotated = generative.frechet_distance(q @ mu1, q @ np.diag(s1) @ q.T, q @ mu2, q @ np.diag(s2) @ q.T)
    assert rotated == pytest.approx(expected, rel=1e-6)
    assert generative.frechet_distance(mu1, np.diag(s1), mu1, np.diag(s1)) == pytest.approx(0, abs=1e-9)


def test_frechet_distance_from_samples_converges_and_survives_few_samples():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(20000, 4, generator=g), torch.randn(20000, 4, generator=g) + 1.0
    assert generative.feature_distance(a, b) == pytest.approx(4.0, abs=0.1)  # shift 1 in 4 dimensions
    few = generative.feature_distance(torch.randn(5, 32, generator=g), torch.randn(5, 32, generator=g))
    assert math.isfinite(few) and few > 0  # singular covariances: finite, not NaN


def test_precision_and_recall_on_point_clouds_with_known_answers():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(2000, 2, generator=g)
    same = torch.randn(2000, 2, generator=g)
    precision, recall = generative.precision_recall(real, same)
    assert precision > 0.9 and recall > 0.9
    far = generative.precision_recall(real, same + 100)
    assert far == (0.0, 0.0)
    # A collapsed generator: every sample near one real point. Precise, but it covers almost nothing.
    collapsed = real[:1] + 0.001 * torch.randn(2000, 2, generator=g)
    precision, recall = generative.precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.01


def test_class_coverage_is_the_entropy_of_the_class_histogram():
    assert generative.class_coverage(torch.arange(10).repeat(7), 10) == pytest.approx(math.log2(10))
    assert generative.class_coverage(torch.full((50,), 3), 10) == 0.0
    assert generative.class_coverage(torch.tensor([0, 1]), 10) == pytest.approx(1.0)


def test_inception_weights_are_verified_and_give_deterministic_features():
    path = inception.weights_path()
    assert path.stat().st_size == 87_335_461
    g = torch.Generator().manual_seed(0)
    images = torch.rand(3, 1, 28, 28, generator=g) * 2 - 1
    first = inception.inception_features(images)
    assert first.shape == (3, 2048) and first.dtype == torch.float64
    assert torch.equal(first, inception.inception_features(images))
    assert torch.equal(first[1:2], inception.inception_features(images[1:2]))  # per image, not per batch


def test_the_network_run_block_by_block_gives_the_files_features():
    g = torch.Generator().manual_seed(1)
    x = inception.to_inception_input(torch.rand(2, 1, 28, 28, generator=g) * 2 - 1)
    with torch.no_grad():
        files = inception.load_inception()(x)
        ours = inception.inception_network()(x.contiguous(memory_format=torch.channels_last))
    ours = ours.reshape(-1, inception.FEATURES)
    assert files.abs().max() > 1  # features, not zeros
    torch.testing.assert_close(ours, files, rtol=1e-4, atol=1e-4)  # batch norm folded: rounding only


def test_a_wrong_inception_file_is_refused_in_one_line(tmp_path, monkeypatch):
    fake = tmp_path / inception.FILE
    fake.write_bytes(b"not the network")
    monkeypatch.setattr(inception, "weights_path", lambda: fake)
    inception.load_inception.cache_clear()
    try:
        with pytest.raises(DataError, match="SHA-256") as e:
            inception.load_inception()
        assert "\n" not in str(e.value)
    finally:
        inception.load_inception.cache_clear()


def test_inception_input_is_quantised_grey_to_rgb_at_299():
    x = inception.to_inception_input(torch.tensor([-1.0, 1.0]).reshape(1, 1, 1, 2).repeat(1, 1, 28, 14))
    assert x.shape == (1, 3, 299, 299)
    assert x.min() == -1 and x.max() == 255 / 128 - 1  # the TF network's input range


def test_real_features_are_computed_once_and_named_by_the_images(tmp_path, monkeypatch):
    monkeypatch.setenv("DLHISTORY_MEASURES", str(tmp_path))
    images = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    first = inception.cached_inception_features(images, "toy")
    (stored,) = tmp_path.iterdir()
    calls = []
    monkeypatch.setattr(inception, "inception_features",
                        lambda x: calls.append(x) or torch.zeros(len(x), inception.FEATURES))
    assert torch.equal(inception.cached_inception_features(images, "toy"), first) and not calls  # read back
    inception.cached_inception_features(-images, "toy")  # other images of the same count: computed
    assert len(calls) == 1 and len(list(tmp_path.iterdir())) == 2 and stored.exists()


def test_a_reference_is_computed_in_parts_and_one_held_elsewhere_is_left_to_its_holder(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    from dlhistory.records import hold

    monkeypatch.setenv("DLHISTORY_MEASURES", str(tmp_path))
    monkeypatch.setattr(inception, "PART", 2)
    images = torch.arange(5.0).reshape(5, 1, 1, 1).expand(5, 1, 2, 2) / 10
    computed = []

    def features(x):  # a stand-in for the network: each image's first pixel, 2048 times
        computed.append([round(v, 3) for v in x[:, 0, 0, 0].tolist()])
        return x[:, 0, 0, :1].reshape(-1, 1).double().repeat(1, inception.FEATURES)

    monkeypatch.setattr(inception, "inception_features", features)
    digest = hashlib.sha256(images.float().contiguous().numpy().tobytes()).hexdigest()[:16]
    folder = tmp_path / f"inception-toy-5-{digest}.parts"
    held, release = threading.Event(), threading.Event()

    def another_process():  # holds part 0 and computes it meanwhile
        with hold(folder / "0"):
            held.set()
            release.wait(10)
            stored = torch.full((2, inception.FEATURES), 7.0)
            save_file({"features": stored}, str(folder / "0" / "features.safetensors"))

    worker = threading.Thread(target=another_process)
    worker.start()
    held.wait(10)
    threading.Timer(0.5, release.set).start()
    result = inception.cached_inception_features(images, "toy")
    worker.join()
    assert computed == [[0.2, 0.3], [0.4]]  # parts 1 and 2; part 0 came from its holder
    assert result[:2].eq(7).all() and torch.allclose(result[2:, 0], torch.tensor([0.2, 0.3, 0.4]).double())
    assert [p.name for p in tmp_path.iterdir()] == [f"inception-toy-5-{digest}.safetensors"]  # parts removed
