"""Chapter 6's CLIP linear probe (CPU, offline): the fit on toy features, the tiny open_clip model, the
feature cache, the ``probe`` command's files, and the rehearsal's hand-made hub cache of open_clip's weights.

Only the tiny random model of smoke is built here (never ViT-L/14); its features mean nothing, so
the tests check what the code does, and the toy set checks that the fit itself learns.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers.__main__ import main
from helpers.classify import clip_features as cf
from helpers.classify import probe as pr
from helpers.classify.eval_files import load_result
from helpers.core.paths import REPO_ROOT
from helpers.core.profiles import TINY_CLIP, get_profile
from helpers.data import manifest as mf
from helpers.rehearsal import hub as hub_module

VIT_L_HUB = "timm/vit_large_patch14_clip_224.openai"


def _toy(n, seed):
    """Two classes either side of a hyperplane through the origin, with a margin; unit-length rows."""
    rng = np.random.default_rng(seed)
    w = np.ones(16) / 4.0
    x = rng.normal(size=(n, 16))
    x = x[np.abs(x @ w) > 0.5][: n // 2 * 2]
    y = (x @ w > 0).astype(int)
    return x / np.linalg.norm(x, axis=1, keepdims=True), y


def test_the_probe_recovers_a_linearly_separable_toy_set():
    x_train, y_train = _toy(200, 0)
    x_val, y_val = _toy(100, 1)
    x_test, y_test = _toy(200, 2)
    grid = pr.c_grid("1e-3:1e3:7")
    probe = pr.fit_probe(x_train, y_train, x_val, y_val, grid)
    assert np.mean((pr.probe_scores(probe, x_test) >= 0.5) == y_test) == 1.0
    assert probe["C"] in grid and list(probe["grid"]["C"]) == sorted(grid)
    assert probe["grid"]["converged"].dtype == bool and probe["grid"]["converged"].iloc[0]
    # validation log loss chose it: the strongest regularization underfits a separable set
    assert probe["C"] > grid[0] and probe["grid"]["val_log_loss"].min() < probe["grid"]["val_log_loss"].iloc[0]
    flipped = pr.fit_probe(x_train, 1 - y_train, x_val, 1 - y_val, grid)
    assert np.mean((pr.probe_scores(flipped, x_test) >= 0.5) == y_test) == 0.0


def test_c_grid_and_one_class_are_refused_clearly():
    assert np.allclose(pr.c_grid("1e-4:1e4:17")[::4], [1e-4, 1e-2, 1, 1e2, 1e4])
    for bad in ("1e-4,1e4", "0:1:3", "1:0.1:3", "a:b:c", "1e-2:1:0"):
        with pytest.raises(pr.ProbeError, match="'probe_c_grid' takes LOW:HIGH:N"):
            pr.c_grid(bad)
    x, y = _toy(40, 0)
    with pytest.raises(pr.ProbeError, match="training rows hold one class"):
        pr.fit_probe(x, np.zeros_like(y), x, y, [1.0])


def test_tiny_clip_loads_through_open_clip_with_its_own_preprocessing(data_root):
    profile = get_profile("smoke")
    model, pretrained, quick_gelu = cf.open_clip_args(profile)
    assert model == TINY_CLIP and pretrained == str(cf.tiny_clip_dir() / cf.WEIGHTS_NAME)
    assert not quick_gelu  # the tiny config has QuickGELU in itself
    assert cf.open_clip_args(get_profile("course"))[1:] == ("openai", True)  # OpenAI's weights need QuickGELU
    features = cf.FeatureModel(profile, "cpu").encode([Image.new("RGB", (90, 70), (200, 10, 10)),
                                                      Image.new("RGB", (64, 64), (10, 10, 200))])
    assert features.shape == (2, cf.TINY_CONFIG["embed_dim"])
    assert np.allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(features[0], features[1])
    assert "random weights" in cf.describe(profile) and "mean nothing" in cf.describe(profile)
    assert "ViT-L-14" in cf.describe(get_profile("course")) and "openai" in cf.describe(get_profile("course"))
    with pytest.raises(pr.ProbeError, match="neither a tag open_clip knows"):
        cf.open_clip_args(get_profile("smoke", {"probe_model": "ViT-B-32", "probe_pretrained": "nonsense"}))


def test_features_are_cached_per_image_and_only_new_ones_encoded(data_root, monkeypatch):
    profile = get_profile("smoke")
    folder = data_root / "imgs"
    folder.mkdir(parents=True)
    files = []
    for i in range(3):
        files.append(folder / f"{i}.png")
        Image.new("RGB", (64, 64), (40 * i, 100, 200 - 40 * i)).save(files[-1])
    (folder / "bad.png").write_bytes(b"not an image")
    model, key = cf.FeatureModel(profile, "cpu"), cf.model_key(profile)
    skipped = {}
    first, n = cf.cached_features(profile, "toy", files + [folder / "bad.png"], data_root, model, key=key,
                                  skipped=skipped)
    assert n == 4 and np.isnan(first[3]).all() and not np.isnan(first[:3]).any()
    assert "not an image" in skipped[folder / "bad.png"]

    def no_model(self):
        raise AssertionError("the model was loaded although every feature was cached")
    with monkeypatch.context() as patched:
        patched.setattr(cf.FeatureModel, "_load", no_model)
        again, n = cf.cached_features(profile, "toy", files, data_root, cf.FeatureModel(profile), key=key)
    assert n == 0 and np.array_equal(again, first[:3])
    with np.load(cf.features_path(profile, "toy")) as z:
        assert sorted(k.split("\t")[0] for k in z["keys"]) == ["imgs/0.png", "imgs/1.png", "imgs/2.png"]
    Image.new("RGB", (64, 64), (0, 0, 0)).save(files[1])  # a rewritten image is encoded anew
    os.utime(files[1], ns=(1, 1))
    changed, n = cf.cached_features(profile, "toy", files, data_root, cf.FeatureModel(profile), key=key)
    assert n == 1 and np.array_equal(changed[[0, 2]], first[[0, 2]])
    _, n = cf.cached_features(profile, "toy", files, data_root, cf.FeatureModel(profile), key="another model")
    assert n == 3  # another model's features are never reused


@pytest.fixture
def study(data_root):
    """A tiny smoke manifest (train with one augmented generated row, val, test) and a folder of
    'DALL-E 2' images (one of them unreadable)."""
    rows = []
    for split, n in (("train", 4), ("val", 3), ("test", 3)):
        for label, base in (("real", 60), ("generated", 190)):
            for i in range(n):
                rel = f"smoke/images/{label}/{split}/{label}_{i}.jpg"
                (data_root / rel).parent.mkdir(parents=True, exist_ok=True)
                rng = np.random.default_rng(i + 10 * n)
                Image.fromarray(rng.integers(base - 50, base + 50, (72, 72, 3), dtype=np.uint8)).save(data_root / rel)
                rows.append({"path": rel, "label": mf.LABELS[label], "label_name": label, "split": split,
                             "source": "coco" if label == "real" else "sd2"})
    rows.append(dict(rows[-1], path="smoke/images/generated/train/augmented_0.jpg", split="train", source="augmented"))
    Image.new("RGB", (72, 72), (200, 200, 200)).save(data_root / rows[-1]["path"])
    for label in ("real", "generated"):
        mf.write_part("smoke", label, pd.DataFrame([r for r in rows if r["label_name"] == label]))
    folder = data_root.parent / "dalle2"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (80, 80), (220, 30 * i, 90)).save(folder / f"d{i}.png")
    (folder / "broken.jpg").write_bytes(b"")
    return get_profile("smoke", {"dalle2_dir": str(folder), "imagen_dir": ""})


def test_the_probe_step_writes_evaluations_and_refits_from_cached_features(study, monkeypatch):
    out = pr.run(study, batch_size=4)
    probe = out["probe"]
    assert probe["train"] == {"n_real": 4, "n_generated": 5, "augmented": 1}  # Chapter 4's training rows
    assert probe["val"] == {"n_real": 3, "n_generated": 3} and probe["encoded_now"] == 15
    assert probe["C"] in pr.c_grid(study.probe_c_grid)
    assert list(out["evaluations"]) == ["test split", "DALL-E 2", "DALL-E 2 + real test"]
    test = load_result(study, f"probe-{TINY_CLIP}_test")
    assert len(test["predictions"]) == 6 and test["metrics"]["n_real"] == 3
    alone = out["evaluations"]["DALL-E 2"]
    assert alone["metrics"]["n_generated"] == 3 and alone["metrics"]["n_real"] == 0
    assert [s["file"].endswith("broken.jpg") for s in alone["skipped"]] == [True]
    both = out["evaluations"]["DALL-E 2 + real test"]
    assert both["name"] == f"probe-{TINY_CLIP}_dalle2-real-test" and both["metrics"]["roc_auc"] is not None
    table = pr.comparison(study)
    assert list(table["set"]) == ["test split", "DALL-E 2", "DALL-E 2 + real test"]
    assert set(table["model"]) == {f"linear probe on {TINY_CLIP}"}  # Chapter 4's classifier not evaluated here
    assert pr.c_table(study)["chosen"].sum() == 1

    def no_model(self):
        raise AssertionError("features were computed again")
    monkeypatch.setattr(cf.FeatureModel, "_load", no_model)
    again = pr.run(study, batch_size=4)
    assert all(r["reused"] for r in again["evaluations"].values())
    refit = pr.run(study, batch_size=4, force=True)  # a refit and new scores, from the cache alone
    assert refit["probe"]["encoded_now"] == 0 and refit["probe"]["coef"] == probe["coef"]
    assert not any(r["reused"] for r in refit["evaluations"].values())


def test_the_scorer_gives_p_generated_of_pil_images(study):
    with pytest.raises(pr.ProbeError, match="python -m helpers probe --profile smoke"):
        pr.ProbeScorer(study)
    pr.run(study, batch_size=4)
    scorer = pr.ProbeScorer(study, "cpu")
    test = load_result(study, f"probe-{TINY_CLIP}_test")["predictions"]
    images = [Image.open(study_file).convert("RGB") for study_file in
              [cf.data_root() / p for p in test["path"]]]
    assert np.allclose(scorer.predict(images, batch_size=4), test["p_generated"], atol=1e-5)
    assert scorer.stamp["model_key"] == cf.model_key(study)


def test_the_command_prints_the_table_and_refuses_a_bad_grid(study, capsys, monkeypatch):
    monkeypatch.setenv("BOOK_SET", f"dalle2_dir={study.dalle2_dir} imagen_dir=")
    assert main(["probe", "--profile", "smoke", "--batch-size", "4"]) == 0
    printed = capsys.readouterr().out
    assert "linear probe on tiny-clip-vit" in printed and "mean nothing" in printed
    assert "$BOOK_RESULTS_ROOT/smoke/probe/tiny-clip-vit.json" in printed
    assert main(["probe", "--profile", "smoke", "--set", "probe_c_grid=1,2"]) == 1
    assert "'probe_c_grid' takes LOW:HIGH:N" in capsys.readouterr().err


LOAD_OFFLINE = """
import json, open_clip, torch
from open_clip.pretrained import download_pretrained, get_pretrained_cfg
from helpers.classify import clip_features as cf
path = download_pretrained(get_pretrained_cfg("ViT-L-14", "openai"))  # open_clip's own resolution, offline
cf.register_tiny_clip()
model, _, preprocess = open_clip.create_model_and_transforms(cf.TINY_CLIP, pretrained=path)
from safetensors.torch import load_file
saved = load_file(path)
print("RESULT " + json.dumps({"file": path.rsplit("/", 1)[-1],
      "same": all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())}))
"""


def test_rehearsal_hub_cache_serves_open_clips_weights_offline(tmp_path, monkeypatch):
    """The cache under ViT-L/14's real hub id, laid out as open_clip finds it offline; a tiny model of
    the same file layout stands in for ViT-L/14 (building ViT-L here would take minutes)."""
    assert hub_module.probe_hub_ids(get_profile("course")) == [VIT_L_HUB]
    assert hub_module.probe_hub_ids(get_profile("smoke")) == []
    assert hub_module.open_clip_model_for(VIT_L_HUB) in ("ViT-L-14", "ViT-L-14-quickgelu")
    monkeypatch.setenv("BOOK_DATA_ROOT", str(tmp_path / "data"))
    cf.register_tiny_clip()
    monkeypatch.setattr(hub_module, "open_clip_model_for", lambda repo: TINY_CLIP if repo == VIT_L_HUB else None)
    snapshot = hub_module.build_hub_cache(tmp_path / "hf", [VIT_L_HUB])[VIT_L_HUB]
    assert {p.name for p in snapshot.iterdir()} == {cf.WEIGHTS_NAME, "open_clip_config.json"}
    config = json.loads((snapshot / "open_clip_config.json").read_text())
    assert config["model_cfg"] == cf.TINY_CONFIG and config["preprocess_cfg"]["interpolation"] == "bicubic"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE")}
    env |= {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "BOOK_DATA_ROOT": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, "-c", LOAD_OFFLINE], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    assert json.loads(lines[-1][7:]) == {"file": cf.WEIGHTS_NAME, "same": True}


def test_a_folder_of_unreadable_files_is_refused_and_skipped_beside_photographs(study, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_bytes(b"")
    (bad / "b.png").write_text("text")
    out = pr.run(study, batch_size=4)
    model, key = cf.FeatureModel(study, "cpu"), cf.model_key(study)
    with pytest.raises(pr.ProbeError, match="none of the images of .*bad could be read"):
        pr.evaluate_probe(study, out["probe"], model, key, bad, "generated")
    both = pr.evaluate_probe(study, out["probe"], model, key, bad, "generated", "test")
    assert len(both["predictions"]) == 3 and len(both["skipped"]) == 2  # the photographs alone are scored
