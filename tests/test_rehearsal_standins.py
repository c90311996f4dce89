"""The rehearsal's stand-ins (issue 9): a COCO server tree the data step reads as COCO's own, and a
Hugging Face cache that diffusers and timm load by hub id, offline, through their own hub code."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import requests

from helpers.data import coco
from helpers.core.download import DownloadError, download_file
from helpers.data.images import BadImage, load_rgb
from helpers.inpaint.masks import coco_object
from helpers.core.profiles import SD2_768, SD2_BASE_512, get_profile
from helpers.rehearsal import (
    BAD_KINDS,
    SD2_INPAINT,
    build_coco_mirror,
    build_hub_cache,
    component_configs,
    hub_ids_for,
    model_index,
    rle_counts,
    serve,
)
from helpers.rehearsal import hub as hub_module
from helpers.rehearsal.coco_annotations import CATEGORIES, SIZES

REPO = Path(__file__).resolve().parents[1]
TIMM_NAME = "convnext_tiny.fb_in22k_ft_in1k_384"  # course's classifier: the real architecture, 28 M weights


# ---------------------------------------------------------------- COCO mirror

@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    root = tmp_path_factory.mktemp("mirror")
    return root, build_coco_mirror(root, n_train=24, n_val=12, seed=3, bad_per_kind=1)


@pytest.fixture(scope="module")
def annotations(mirror, tmp_path_factory):
    """The zip taken apart by the data step's own code."""
    root, _ = mirror
    coco_root = tmp_path_factory.mktemp("coco")
    coco.extract_captions(root / "annotations" / coco.ANNOTATIONS_ZIP, coco_root)
    return coco_root


def test_zip_holds_coco_files_under_annotations(mirror):
    root, result = mirror
    with zipfile.ZipFile(root / result["zip"]) as zf:
        names = set(zf.namelist())
    assert names == {f"annotations/{n}" for n in ("captions_train2017.json", "captions_val2017.json",
                                                   "instances_train2017.json", "instances_val2017.json")}


def test_data_step_reads_captions_and_plans(annotations, mirror):
    _, result = mirror
    tables = {s: coco.load_captions(coco.caption_path(annotations, s)) for s in coco.CAPTION_FILES}
    all_captions = []
    for subset, table in tables.items():
        assert table["id"].tolist() == result["ids"][subset]
        assert all(len(c) == 5 for c in table["captions"])
        assert set(zip(table["width"], table["height"])) <= set(SIZES)
        assert all(name == f"{i:012d}.jpg" for i, name in zip(table["id"], table["file_name"]))
        all_captions += [coco.normalise(c) for caps in table["captions"] for c in caps]
    assert len(set(all_captions)) == len(all_captions)  # distinct, as make_plan's rules need
    assert not set(result["ids"]["train2017"]) & set(result["ids"]["val2017"])
    profile = get_profile("course", dict(real_train=6, real_val=2, real_test=3, gen_train=5, gen_val=2, gen_test=3))
    real, gen = coco.make_plan(profile, tables["train2017"], tables["val2017"])
    assert len(real) == 11 and len(gen) == 10


def test_instances_follow_coco_schema(annotations, mirror):
    _, result = mirror
    data = json.loads((annotations / "annotations" / "instances_train2017.json").read_text())
    assert {"info", "licenses", "images", "annotations", "categories"} <= set(data)
    assert {(c["id"], c["name"]) for c in data["categories"]} == {(i, n) for i, n, _ in CATEGORIES}
    image = {im["id"]: im for im in data["images"]}
    crowds = [a for a in data["annotations"] if a["iscrowd"]]
    assert crowds and all(a["category_id"] == 1 for a in crowds)
    for ann in crowds:
        counts, (h, w) = ann["segmentation"]["counts"], ann["segmentation"]["size"]
        assert (h, w) == (image[ann["image_id"]]["height"], image[ann["image_id"]]["width"])
        assert sum(counts) == h * w and sum(counts[1::2]) == ann["area"]
    for ann in (a for a in data["annotations"] if not a["iscrowd"]):
        polygon = ann["segmentation"][0]
        assert len(polygon) >= 16 and len(polygon) % 2 == 0
        x, y, _, bh = ann["bbox"]
        assert min(polygon[0::2]) == pytest.approx(x) and max(polygon[1::2]) == pytest.approx(y + bh)
    masks = [coco_object(data, i, 384, 384) for i in result["ids"]["train2017"]]
    assert sum(m is not None for m in masks) >= len(masks) // 2  # Chapter 3's object holes find objects


def test_rle_counts_are_column_major_from_zeros():
    mask = np.array([[0, 1, 1], [0, 1, 0]], dtype=np.uint8)  # columns: (0,0) (1,1) (1,0)
    assert rle_counts(mask) == [2, 3, 1]
    assert rle_counts(np.ones((2, 2))) == [0, 4]


def test_bad_files_are_bad_in_their_own_way(mirror):
    root, result = mirror
    for subset in ("train2017", "val2017"):
        bad = result["bad"][subset]
        assert set(bad) == set(BAD_KINDS) and all(len(v) == 1 for v in bad.values())
        path = {kind: root / subset / f"{ids[0]:012d}.jpg" for kind, ids in bad.items()}
        assert not path["missing"].exists()
        with pytest.raises(BadImage, match="truncated or corrupt"):
            load_rgb(path["truncated"])
        from PIL import Image
        assert Image.open(path["greyscale"]).mode == "L" and Image.open(path["cmyk"]).mode == "CMYK"
        assert load_rgb(path["greyscale"]).mode == load_rgb(path["cmyk"]).mode == "RGB"
        good = next(i for i in result["ids"][subset] if i not in {v[0] for v in bad.values()})
        pixels = np.asarray(load_rgb(root / subset / f"{good:012d}.jpg"), dtype=np.float32)
        assert pixels.std() > 20 and pixels.shape[1::-1] in SIZES  # not flat, a COCO size


def test_same_seed_same_bytes_other_seed_other_tree(tmp_path):
    a = build_coco_mirror(tmp_path / "a", 12, 12, seed=5, bad_per_kind=1)
    b = build_coco_mirror(tmp_path / "b", 12, 12, seed=5, bad_per_kind=1)
    c = build_coco_mirror(tmp_path / "c", 12, 12, seed=6, bad_per_kind=1)
    assert a == b and a["md5"] != c["md5"]
    name = f"{a['ids']['val2017'][0]:012d}.jpg"
    if name != f"{a['bad']['val2017']['missing'][0]:012d}.jpg":
        assert (tmp_path / "a/val2017" / name).read_bytes() == (tmp_path / "b/val2017" / name).read_bytes()
    with pytest.raises(ValueError, match="needs more than"):
        build_coco_mirror(tmp_path / "d", 5, 12, bad_per_kind=1)
    again = build_coco_mirror(tmp_path / "a", 14, 12, seed=7, bad_per_kind=1)  # other arguments: rebuilt
    on_disk = {int(p.stem) for p in (tmp_path / "a/train2017").glob("*.jpg")}
    assert on_disk == set(again["ids"]["train2017"]) - set(again["bad"]["train2017"]["missing"])


def test_bad_files_can_be_aimed_at_a_profiles_plan(tmp_path):
    """With a profile, the bad files are photographs its plan samples, so its data step meets each kind."""
    profile = get_profile("course", dict(real_train=8, real_val=2, real_test=5, gen_train=4, gen_val=2, gen_test=4))
    result = build_coco_mirror(tmp_path / "m", 30, 20, seed=1, bad_per_kind=2, profile=profile)
    coco_root = tmp_path / "coco"
    coco.extract_captions(tmp_path / "m" / result["zip"], coco_root)
    tables = [coco.load_captions(coco.caption_path(coco_root, s)) for s in coco.CAPTION_FILES]
    real, _ = coco.make_plan(profile, *tables)
    for subset, n_planned in (("train2017", 10), ("val2017", 5)):
        planned = set(real.loc[real["coco_subset"] == subset, "coco_id"])
        bad = result["bad"][subset]
        assert all(set(ids) & planned for ids in bad.values())  # each kind meets the plan
        assert len(planned & {i for ids in bad.values() for i in ids}) == min(n_planned, 10)


def test_server_answers_like_cocos(mirror, tmp_path):
    root, result = mirror
    url, stop = serve(root)
    try:
        zip_bytes = requests.get(f"{url}/{result['zip']}", timeout=10).content
        assert zip_bytes == (root / result["zip"]).read_bytes()
        missing = result["bad"]["train2017"]["missing"][0]
        assert requests.get(coco.image_url(url, "train2017", f"{missing:012d}.jpg"), timeout=10).status_code == 404
        for bad_path in ("/mirror.json", "/../mirror.json", "/train2017/"):
            assert requests.get(url + bad_path, timeout=10).status_code == 404
        part = requests.get(f"{url}/{result['zip']}", headers={"Range": "bytes=10-"}, timeout=10)
        assert part.status_code == 206 and part.content == zip_bytes[10:]
        assert requests.get(f"{url}/{result['zip']}", headers={"Range": f"bytes={len(zip_bytes)}-"},
                            timeout=10).status_code == 416
        # through the data step's downloader: a 404 is an error; a broken transfer is resumed
        with pytest.raises(DownloadError, match="HTTP 404"):
            download_file(coco.image_url(url, "train2017", f"{missing:012d}.jpg"), tmp_path / "x.jpg", retries=0)
        flaky = f"{result['bad']['val2017']['flaky'][0]:012d}.jpg"
        got = download_file(coco.image_url(url, "val2017", flaky), tmp_path / flaky, retries=2)
        assert got.read_bytes() == (root / "val2017" / flaky).read_bytes()
    finally:
        stop()


def test_cli_serves_until_killed_and_writes_its_url(mirror, tmp_path):
    root, result = mirror
    url_file = tmp_path / "url"
    proc = subprocess.Popen([sys.executable, "-m", "helpers.rehearsal", "serve-coco", str(root),
                             "--url-file", str(url_file)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not url_file.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        url = url_file.read_text().strip()
        assert url.startswith("http://127.0.0.1:")
        assert requests.get(f"{url}/{result['zip']}", timeout=10).status_code == 200
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_cli_refuses_a_folder_without_a_mirror(tmp_path):
    out = subprocess.run([sys.executable, "-m", "helpers.rehearsal", "serve-coco", str(tmp_path),
                          "--url-file", str(tmp_path / "url")], cwd=REPO, capture_output=True, text=True, check=False)
    assert out.returncode == 1 and "build-coco" in out.stderr and "Traceback" not in out.stderr


# ---------------------------------------------------------------- model hub

def test_hub_ids_of_each_profile():
    assert hub_ids_for(get_profile("smoke")) == []
    timm_ids = ["timm/vgg16.tv_in1k", "timm/resnet50.tv_in1k", "timm/efficientnet_b0.ra_in1k"]
    clip = "timm/vit_large_patch14_clip_224.openai"  # Chapter 6's probe: open_clip's ViT-L-14 openai
    assert hub_ids_for(get_profile("course")) == [SD2_BASE_512, SD2_INPAINT, *timm_ids, f"timm/{TIMM_NAME}", clip]
    assert hub_ids_for(get_profile("paper")) == [SD2_768, SD2_INPAINT, *timm_ids,
                                                 "timm/convnext_xlarge.fb_in22k_ft_in1k_384", clip]
    fewer = get_profile("course", dict(inpaint_models="telea", train_pretrained="none"))
    assert hub_ids_for(fewer) == [SD2_BASE_512, clip]


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("hf")
    build_hub_cache(home, [SD2_BASE_512, SD2_768, SD2_INPAINT, f"timm/{TIMM_NAME}"])
    return home


def test_cache_is_laid_out_as_huggingface_hub_does(hf_home):
    repo = hf_home / "hub" / "models--stabilityai--stable-diffusion-2-base"
    revision = (repo / "refs" / "main").read_text()
    assert len(revision) == 40 and int(revision, 16) >= 0
    snapshot = repo / "snapshots" / revision
    links = [p for p in snapshot.rglob("*") if p.is_symlink()]
    assert {p.relative_to(snapshot).as_posix() for p in links} >= {
        "model_index.json", "scheduler/scheduler_config.json", "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
        "text_encoder/model.safetensors", "tokenizer/vocab.json", "tokenizer/merges.txt",
        "feature_extractor/preprocessor_config.json"}
    for link in links:
        blob = link.resolve()
        assert blob.parent == (repo / "blobs").resolve()
        assert blob.name == hashlib.sha256(blob.read_bytes()).hexdigest()
    assert json.loads((snapshot / "model_index.json").read_text()) == json.loads(json.dumps(model_index(SD2_BASE_512)))
    timm_snapshot = next((hf_home / "hub" / f"models--timm--{TIMM_NAME}" / "snapshots").iterdir())
    config = json.loads((timm_snapshot / "config.json").read_text())
    assert config["architecture"] == "convnext_tiny" and config["pretrained_cfg"]["input_size"] == [3, 384, 384]


def test_a_second_build_keeps_the_cache(hf_home):
    before = (hf_home / "hub" / "models--stabilityai--stable-diffusion-2" / "refs" / "main").read_text()
    started = time.monotonic()
    build_hub_cache(hf_home, [SD2_768])
    assert time.monotonic() - started < 1
    assert (hf_home / "hub" / "models--stabilityai--stable-diffusion-2" / "refs" / "main").read_text() == before


LOAD_OFFLINE = f"""
import json, torch
from PIL import Image
import numpy as np
from safetensors.torch import load_file
from huggingface_hub import try_to_load_from_cache
from helpers.classify import models
from helpers.core.profiles import get_profile
from helpers.data import generate
from helpers.inpaint.sd import SDInpainter

out = {{}}
profile = get_profile("course", dict(sd_steps=2, sd_resolution=64))
pipe = generate.load_pipeline(profile, torch.device("cpu"))
out["base"] = [pipe.scheduler.config.prediction_type, pipe.unet.config.sample_size,
               generate.generate_batch(pipe, profile, ["a dog on a beach"], [1])[0].size]
pipe = generate.from_pretrained(__import__("diffusers").StableDiffusionPipeline, "{SD2_768}", torch.float32, "sd_model")
out["768"] = [type(pipe.scheduler).__name__, pipe.scheduler.config.prediction_type, pipe.unet.config.sample_size]
inpainter = SDInpainter(profile, "cpu")  # Chapter 3's loader; run at 64 px here (it works at 512)
mask = Image.new("L", (64, 64), 0); mask.paste(255, (10, 10, 40, 40))
filled = inpainter.pipe(prompt="grass", image=Image.new("RGB", (64, 64), (90, 120, 30)), mask_image=mask,
                        height=64, width=64, num_inference_steps=2).images[0]
out["inpaint"] = [inpainter.pipe.unet.config.in_channels, filled.size]
model = models.build_model(profile)
saved = load_file(try_to_load_from_cache("timm/{TIMM_NAME}", "model.safetensors"))
out["timm"] = [type(model).__name__, list(model(torch.zeros(1, 3, 64, 64)).shape),
               bool(torch.equal(model.stem[0].weight, saved["stem.0.weight"]))]
print("RESULT " + json.dumps(out))
"""


def test_diffusers_and_timm_load_them_by_hub_id_offline(hf_home, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE", "HF_HUB_DISABLE_TELEMETRY")}
    env |= {"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "BOOK_DATA_ROOT": str(tmp_path / "data"),
            "BOOK_RESULTS_ROOT": str(tmp_path / "results")}
    proc = subprocess.run([sys.executable, "-c", LOAD_OFFLINE], cwd=REPO, env=env, capture_output=True,
                          check=False, text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["base"] == ["epsilon", 64, [64, 64]]
    assert out["768"] == ["DDIMScheduler", "v_prediction", 96]
    assert out["inpaint"] == [9, [64, 64]]
    assert out["timm"] == ["ConvNeXt", [1, 2], True]  # the cached weights, not a fresh random init


def test_full_size_configs_are_sd2s_published_sizes():
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    configs = component_configs(SD2_768)
    assert configs["unet"]["sample_size"] == 96 and component_configs(SD2_INPAINT)["unet"]["in_channels"] == 9
    text = {k: v for k, v in configs["text_encoder"].items() if k not in ("architectures", "model_type")}
    with torch.device("meta"):  # shapes only: no 865 M weights in memory
        sizes = [sum(p.numel() for p in m.parameters()) for m in (
            UNet2DConditionModel(**configs["unet"]), AutoencoderKL(**configs["vae"]),
            CLIPTextModel(CLIPTextConfig(**text)))]
    assert [round(n / 1e6, 1) for n in sizes] == [865.9, 83.7, 340.4]


def test_full_size_path_writes_loadable_components(tmp_path, monkeypatch):
    """The full-size code path, run with narrowed published configs (the real ones need a GPU box)."""
    from diffusers import StableDiffusionInpaintPipeline

    def narrow(repo_id):
        configs = component_configs(repo_id)
        configs["unet"] |= dict(block_out_channels=[32, 32, 64, 64], attention_head_dim=[2, 2, 4, 4],
                                cross_attention_dim=32, layers_per_block=1, norm_num_groups=8)
        configs["vae"] |= dict(block_out_channels=[8, 8, 16, 16], layers_per_block=1, norm_num_groups=8)
        configs["text_encoder"] |= dict(hidden_size=32, intermediate_size=64, num_attention_heads=4,
                                        num_hidden_layers=2)
        return configs

    monkeypatch.setattr(hub_module, "component_configs", narrow)
    snapshot = build_hub_cache(tmp_path, [SD2_INPAINT], full_size=True)[SD2_INPAINT]
    pipe = StableDiffusionInpaintPipeline.from_pretrained(snapshot, safety_checker=None)
    assert list(pipe.unet.config.block_out_channels) == [32, 32, 64, 64] and pipe.unet.config.in_channels == 9
    assert pipe.text_encoder.config.num_hidden_layers == 2
    tiny = build_hub_cache(tmp_path, [SD2_INPAINT], full_size=False)[SD2_INPAINT]  # rebuilt, not kept
    assert json.loads((tiny / "unet" / "config.json").read_text())["block_out_channels"] == [32, 64]


def test_unknown_hub_id_is_refused_without_traceback(tmp_path):
    out = subprocess.run([sys.executable, "-m", "helpers.rehearsal", "build-hub", str(tmp_path),
                          "--ids", "someone/some-model"], cwd=REPO, capture_output=True, text=True, check=False)
    assert out.returncode == 1 and "no stand-in for hub id 'someone/some-model'" in out.stderr
    assert "Traceback" not in out.stderr
