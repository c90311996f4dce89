"""The scores of Chapter 3: NIQE offline (helpers.inpaint.niqe), FID, KID and SIFID through
pytorch-fid (helpers.inpaint.fid, .inception), and the bootstrap of two groups
(helpers.inpaint.quality). KID is checked against Binkowski et al.'s estimator written out pair by
pair, the one torch-fidelity and clean-fid implement.

CPU only and offline: every test runs with a private TORCH_HOME and data root, sockets refused and
torch-hub's downloader replaced by a failure, so any attempt to fetch weights fails the test.
"""

from __future__ import annotations

import hashlib
import socket

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image, ImageFilter

from helpers.inpaint import fid, inception, niqe, quality

pytestmark = pytest.mark.slow


def _no_network(*args, **kwargs):
    raise AssertionError("a score of helpers.inpaint tried to use the network")


@pytest.fixture(scope="module")
def offline_env(tmp_path_factory):
    """A private torch-hub cache and data root for the whole module, with the network cut off."""
    base = tmp_path_factory.mktemp("quality")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(base / "torch"))
        mp.setenv("BOOK_DATA_ROOT", str(base / "data"))
        mp.setattr(socket.socket, "connect", _no_network)
        mp.setattr(socket.socket, "connect_ex", _no_network)
        mp.setattr(torch.hub, "download_url_to_file", _no_network)
        inception._INCEPTIONS.clear()
        niqe._NIQE_METRICS.clear()
        yield base
        inception._INCEPTIONS.clear()
        niqe._NIQE_METRICS.clear()


@pytest.fixture(scope="module")
def standin(offline_env):
    return inception.ensure_standin_inception_weights()


@pytest.fixture(scope="module")
def pool_model(standin):
    with pytest.warns(UserWarning, match="stand-in"):
        return inception.inception_model(3, "cpu")


@pytest.fixture(scope="module")
def sifid_net(standin):
    with pytest.warns(UserWarning, match="stand-in"):
        return fid.sifid_model("cpu")


def _photo(name: str, side: int) -> Image.Image:
    from skimage import data as skdata

    return Image.fromarray(getattr(skdata, name)()).convert("RGB").resize((side, side), Image.BICUBIC)


def _noised(img: Image.Image, sigma: float, seed: int = 0) -> Image.Image:
    arr = np.asarray(img, dtype=np.float64)
    arr = arr + np.random.default_rng(seed).normal(0, sigma, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8))


# ------------------------------------------------------------------------------------- NIQE -----

def test_carried_niqe_parameters_are_the_published_ones(offline_env):
    digest = hashlib.sha256(niqe.NIQE_PARAMS_FILE.read_bytes()).hexdigest()
    assert digest == "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296"
    mu, cov = niqe.niqe_pristine_params()
    assert mu.shape == (1, 36) and cov.shape == (36, 36)
    assert np.allclose(cov, cov.T)

    path = niqe.write_niqe_mat()
    assert path == offline_env / "data" / "cache" / "niqe_pris_params.mat"
    mat = scipy.io.loadmat(path)
    with np.load(niqe.NIQE_PARAMS_FILE) as raw:
        assert np.array_equal(mat["mu_prisparam"], raw["mu_pris_param"])
        assert np.array_equal(mat["cov_prisparam"], raw["cov_pris_param"])
    assert mat["mu_prisparam"].dtype == np.float64 and mat["cov_prisparam"].dtype == np.float64

    # an unchanged file is left alone; a damaged one is written again
    stamp = path.stat().st_mtime_ns
    assert niqe.write_niqe_mat() == path and path.stat().st_mtime_ns == stamp
    path.write_bytes(b"damaged")
    niqe.write_niqe_mat()
    assert np.array_equal(scipy.io.loadmat(path)["cov_prisparam"], cov)


def test_niqe_prefers_the_photograph_to_its_blurred_and_noised_versions(offline_env):
    photo = _photo("astronaut", 256)
    blurred = photo.filter(ImageFilter.GaussianBlur(3))
    noised = _noised(photo, 25)
    other = _photo("coffee", 192)
    # two sizes, batches of two: images are grouped by size and the scores come back in order
    scores = niqe.niqe([photo, other, blurred, noised], device="cpu", batch_size=2)
    assert scores.shape == (4,) and scores.dtype == np.float64 and np.isfinite(scores).all()
    assert scores[0] < scores[2] and scores[0] < scores[3]
    alone = np.array([niqe.niqe([im], device="cpu")[0] for im in (photo, other)])
    assert np.allclose(scores[:2], alone, rtol=1e-9)

    # pyiqa got the carried parameters, not downloaded ones
    net = niqe.niqe_metric("cpu").net
    mu, cov = niqe.niqe_pristine_params()
    assert np.array_equal(net.mu_pris_param.numpy(), mu.ravel())
    assert np.array_equal(net.cov_pris_param.numpy(), cov)

    with pytest.raises(quality.QualityError, match="96x96"):
        niqe.niqe([_photo("coffee", 96)], device="cpu")


# ------------------------------------------------------------------------ Frechet distance -----

def _exact_gaussian_sample(rng, n, mean, var):
    """n rows whose sample mean and (unbiased) covariance are exactly ``mean`` and ``diag(var)``."""
    z = rng.normal(size=(n, len(mean)))
    z -= z.mean(axis=0)
    chol = np.linalg.cholesky(np.cov(z, rowvar=False))
    z = z @ np.linalg.inv(chol).T  # sample covariance now the identity
    return z * np.sqrt(var) + mean


@pytest.mark.parametrize("method", ["pytorch-fid", "exact"])
def test_frechet_distance_is_zero_on_itself_and_matches_the_closed_form(method):
    rng = np.random.default_rng(1)
    d = 8
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    var1, var2 = rng.uniform(0.5, 3, d), rng.uniform(0.5, 3, d)
    x = _exact_gaussian_sample(rng, 500, mu1, var1)
    y = _exact_gaussian_sample(rng, 700, mu2, var2)

    assert abs(fid.frechet_distance(x, x, method=method)) <= 1e-6 * var1.sum()
    # diagonal covariances commute: tr(S1 + S2 - 2 (S1 S2)^1/2) = sum (sqrt v1 - sqrt v2)^2
    closed = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    assert fid.frechet_distance(x, y, method=method) == pytest.approx(closed, rel=1e-9)


@pytest.mark.parametrize("n", [6, 400])
def test_exact_route_agrees_with_pytorch_fid(n):
    # fewer samples than dimensions (singular covariances, FID on a small set) and more
    rng = np.random.default_rng(n)
    a = rng.normal(size=(n, 120))
    b = 1.3 * rng.normal(size=(n + 5, 120)) + 0.1
    ref = fid.frechet_distance(a, b, method="pytorch-fid")
    assert fid.frechet_distance(a, b, method="exact") == pytest.approx(ref, rel=1e-5)
    assert abs(fid.frechet_distance(a, a, method="exact")) <= 1e-9 * np.trace(np.cov(a, rowvar=False))


def test_one_sample_has_no_covariance():
    with pytest.raises(quality.QualityError, match="undefined"):
        fid.frechet_distance(np.ones((1, 2048)), np.zeros((1, 2048)))


# --------------------------------------------------------------------------------------- KID -----

def _kid_by_the_formula(x, y):
    """Binkowski et al. (2018), eq. 2, written out pair by pair: the unbiased MMD^2 under
    k(a, b) = (a.b / d + 1)^3 (the estimator torch-fidelity's and clean-fid's KID use)."""
    d = x.shape[1]
    k = lambda a, b: (float(np.dot(a, b)) / d + 1) ** 3
    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


def test_kid_is_the_unbiased_mmd_of_the_cubic_kernel():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(12, 5)), rng.normal(0.4, 1.2, size=(9, 5))
    assert fid.kernel_distance(x, y) == pytest.approx(_kid_by_the_formula(x, y), rel=1e-12)
    assert fid.kernel_distance(x, y) == pytest.approx(fid.kernel_distance(y, x), rel=1e-12)
    with pytest.raises(quality.QualityError, match="at least two"):
        fid.kernel_distance(x[:1], y)
    with pytest.raises(quality.QualityError, match="dimensions"):
        fid.kernel_distance(x, y[:, :4])


def test_kid_is_about_zero_within_a_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(4)
    # non-negative, like Inception's pool features (an average of ReLU outputs)
    x, same = np.abs(rng.normal(size=(200, 64))), np.abs(rng.normal(size=(200, 64)))
    shifts = [fid.kernel_distance(x, same + s) for s in (0.0, 0.25, 0.5, 1.0)]
    itself = fid.kernel_distance(x, x)
    # unbiased: a set with itself gives 2 (mean k(x_i, x_j) over i != j - mean k(x_i, x_i)) / n < 0
    k = (x @ x.T / 64 + 1) ** 3
    off_diagonal = (k.sum() - np.trace(k)) / (200 * 199)
    assert itself == pytest.approx(2 * (off_diagonal - np.diag(k).mean()) / 200, rel=1e-9)
    assert itself < 0 and abs(itself) < 0.05 * shifts[1]
    assert abs(shifts[0]) < 0.05 * shifts[1]
    assert shifts[1] < shifts[2] < shifts[3]
    # larger sets: the mean over seeded subsets estimates the same quantity
    big_a, big_b = rng.normal(size=(300, 16)), rng.normal(0.5, 1.0, size=(250, 16))
    whole = fid.kernel_distance(big_a, big_b)
    sub = fid.kernel_distance(big_a, big_b, subset_size=100, subsets=50, seed=1)
    assert sub == pytest.approx(whole, rel=0.1)
    assert sub == fid.kernel_distance(big_a, big_b, subset_size=100, subsets=50, seed=1)


# ------------------------------------------------------------------ stand-in Inception, FID -----

def test_pytorch_fid_loads_the_standin_offline_and_fid_of_a_set_with_itself_is_zero(
        offline_env, standin, pool_model):
    from pytorch_fid.inception import fid_inception_v3

    path = inception.inception_weights_path()
    assert path == offline_env / "torch" / "hub" / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth"
    assert standin is True and path.is_file()
    status = inception.inception_weights_status()
    assert status["exists"] and status["standin"] and not status["sha256"].startswith("6726825d")

    # pytorch-fid's own loading path, unchanged: torch.hub finds the file and loads it strictly
    net = fid_inception_v3()
    saved = torch.load(path, map_location="cpu", weights_only=True)
    assert torch.equal(net.Mixed_7c.branch_pool.conv.weight, saved["Mixed_7c.branch_pool.conv.weight"])
    assert type(net.Mixed_7c).__name__ == "FIDInceptionE_2"

    images = [_photo("astronaut", 64), _photo("coffee", 64), _photo("chelsea", 80), _photo("rocket", 64)]
    feats = fid.pool_features(images, pool_model)
    assert feats.shape == (4, 2048) and np.isfinite(feats).all() and feats.std() > 1e-3
    spread = np.trace(np.cov(feats, rowvar=False))
    assert abs(fid.frechet_distance(feats, feats)) <= 1e-6 * spread  # FID of the set with itself
    between = fid.fid(images[:2], images[2:], model=pool_model)
    assert between > 1e-3 * spread
    assert between == pytest.approx(fid.frechet_distance(feats[:2], feats[2:]), rel=1e-6)
    # KID on the same features (two images a set: the unbiased estimator's smallest case)
    assert fid.kid(images[:2], images[2:], model=pool_model) == pytest.approx(
        fid.kernel_distance(feats[:2], feats[2:]), rel=1e-6)
    with pytest.raises(quality.QualityError, match="two images"):
        fid.fid(images[:1], images, model=pool_model)


def test_ensure_standin_never_overwrites(offline_env, standin, tmp_path, monkeypatch):
    path = inception.inception_weights_path()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    assert inception.ensure_standin_inception_weights(seed=123) is True
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before

    # a file already there (here a placeholder for the real one) is left exactly as it is
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "other"))
    other = inception.inception_weights_path()
    other.parent.mkdir(parents=True)
    other.write_bytes(b"someone else's weights")
    assert inception.ensure_standin_inception_weights() is True  # not the published file
    assert other.read_bytes() == b"someone else's weights"
    assert sorted(p.name for p in other.parent.iterdir()) == [other.name]


# ------------------------------------------------------------------------------------ SIFID -----

def test_sifid_is_zero_on_itself_and_grows_with_blur(sifid_net):
    photo = _photo("astronaut", 96)
    light = photo.filter(ImageFilter.GaussianBlur(1))
    heavy = photo.filter(ImageFilter.GaussianBlur(4))
    assert abs(fid.sifid(photo, photo, model=sifid_net)) < 1e-6
    s_light = fid.sifid(photo, light, model=sifid_net)
    s_heavy = fid.sifid(photo, heavy, model=sifid_net)
    assert 0 < s_light < s_heavy

    other = _photo("coffee", 64)  # pairs of mixed sizes share batches by size
    batched = fid.sifid_pairs([(photo, light), (photo, heavy), (other, other)], model=sifid_net)
    assert batched.shape == (3,) and batched.dtype == np.float64
    assert np.allclose(batched[:2], [s_light, s_heavy], rtol=1e-6)
    assert abs(batched[2]) < 1e-6


# -------------------------------------------------------------------------------- bootstrap -----

def test_bootstrap_finds_a_clear_shift():
    rng = np.random.default_rng(7)
    a = rng.normal(0.0, 1.0, 150)
    b = rng.normal(1.0, 1.0, 120)
    res = quality.bootstrap_difference(a, b, n_boot=2000, seed=0)
    assert res["observed"] == pytest.approx(b.mean() - a.mean())
    assert res["ci_low"] < 1.0 < res["ci_high"]
    assert res["ci_low"] > 0
    assert res["p_value"] < 0.01
    assert all(isinstance(res[k], float) for k in ("observed", "ci_low", "ci_high", "p_value"))
    assert quality.bootstrap_difference(a, b, seed=0) == res  # seeded


def test_bootstrap_without_shift_contains_zero():
    rng = np.random.default_rng(8)
    a = rng.normal(5.0, 2.0, 100)
    b = rng.normal(5.0, 2.0, 100)
    res = quality.bootstrap_difference(a, b, n_boot=2000, seed=0)
    assert res["ci_low"] < 0 < res["ci_high"]
    assert res["p_value"] > 0.05
    med = quality.bootstrap_difference(a, b, n_boot=500, stat=np.median)
    assert med["stat"] == "median" and med["ci_low"] < 0 < med["ci_high"]
    with pytest.raises(quality.QualityError, match="NaN"):
        quality.bootstrap_difference([1.0, np.nan, 2.0], b)
