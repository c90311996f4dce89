"""Chapter 6's Grad-CAM: maps are distributions, the mass lands on the evidence, objects are split from the background.

A toy ConvNeXt-shaped model (``stages``, then a pooled linear head with the paper's two outputs)
whose "generated" output is the red of the image puts its evidence exactly where the red square
is; the step itself runs on smoke's tiny random ConvNeXt with a handful of images (CPU, seconds).
"""

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from helpers.book import ch6_gradcam
from helpers.classify import gradcam as gc
from helpers.classify import gradcam_step
from helpers.classify.classifier import default_checkpoint
from helpers.classify.eval_files import eval_name, save_result
from helpers.classify.models import build_model
from helpers.classify.prediction import probabilities
from helpers.core.paths import coco_dir
from helpers.core.profiles import get_profile
from helpers.data import manifest as mf
from helpers.inpaint.step import standin_path


class RedSquare(torch.nn.Module):
    """One stage (a 4x4 stride-4 convolution reading the red channel), mean pooling, and a linear head
    whose output 1 ("generated") is ``sign`` times the pooled red and output 0 its opposite."""

    def __init__(self, sign: float = 1.0):
        super().__init__()
        conv = torch.nn.Conv2d(3, 1, 4, stride=4, bias=False)
        with torch.no_grad():
            conv.weight.zero_()
            conv.weight[0, 0] = 1 / 16
        self.stages = torch.nn.Sequential(conv)
        self.head = torch.nn.Linear(1, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[-sign], [sign]]))
            self.head.bias.zero_()

    def forward(self, x):
        return self.head(self.stages(x).mean(dim=(2, 3)))


def _square(top: int, left: int, side: int = 32, size: int = 16) -> torch.Tensor:
    x = torch.zeros(1, 3, side, side)
    x[0, 0, top:top + size, left:left + size] = 1.0
    return x


# -- the maps ------------------------------------------------------------------------------------

def test_the_maps_of_the_tiny_convnext_are_distributions_with_the_models_own_probabilities():
    profile = get_profile("smoke")
    torch.manual_seed(0)
    model = build_model(profile, pretrained="none").eval()
    x = torch.randn(3, 3, profile.train_img_size, profile.train_img_size)
    maps, p = gc.grad_cams(model, x, profile.train_head)
    assert maps.shape[0] == 3 and maps.ndim == 3 and (maps >= 0).all()
    with torch.no_grad():
        expected = probabilities(model(x), profile.train_head).numpy()
    np.testing.assert_allclose(p, expected, rtol=1e-5, atol=1e-6)
    dists = [gc.distribution(m, 96) for m in maps]
    assert any(d is not None for d in dists)
    for d in dists:
        if d is not None:
            assert d.shape == (96, 96) and (d >= 0).all()
            assert d.sum() == pytest.approx(1.0, abs=1e-9)
    assert all(param.grad is None and param.requires_grad for param in model.parameters())  # left as found


@pytest.mark.parametrize("top,left", [(0, 0), (16, 16), (0, 16)])
def test_the_mass_lands_on_the_region_that_holds_the_evidence(top, left):
    maps, p = gc.grad_cams(RedSquare(), _square(top, left), "paper")
    dist = gc.distribution(maps[0], 64)
    region = np.zeros((64, 64), dtype=bool)
    region[2 * top:2 * top + 32, 2 * left:2 * left + 32] = True
    assert gc.object_share(dist, region) > 0.85  # a quarter of the area, most of the mass
    assert gc.object_share(dist, ~region) < 0.15
    assert p[0] > 0.5


def test_the_map_is_of_the_generated_output_and_empty_when_nothing_raises_it():
    maps, p = gc.grad_cams(RedSquare(sign=-1.0), _square(0, 0), "paper")
    assert p[0] < 0.5  # red now speaks for "real": no place raises "generated"
    assert gc.distribution(maps[0], 64) is None


def test_bad_models_heads_and_maps_are_refused():
    with pytest.raises(gc.GradCamError, match="stages"):
        gc.target_layer(torch.nn.Linear(2, 2))
    with pytest.raises(gc.GradCamError, match="unknown head"):
        gc.target_output("softmax")
    assert gc.target_output("paper") == 1 and gc.target_output("logit") == 0
    with pytest.raises(gc.GradCamError, match="finite"):
        gc.distribution(np.array([[1.0, np.nan]]), 8)
    with pytest.raises(gc.GradCamError, match="do not match"):
        gc.object_share(np.ones((4, 4)) / 16, np.ones((8, 8), dtype=bool))


# -- objects and background ----------------------------------------------------------------------

def _instances(annotations, width=200, height=100, image_id=7) -> dict:
    return {"images": [{"id": image_id, "width": width, "height": height}], "annotations": annotations}


def test_the_object_region_goes_through_the_crop_and_splits_the_mass():
    # a 200x100 photograph keeps x 50-150; the object covers x 50-100: the left half of the square
    inst = _instances([{"image_id": 7, "iscrowd": 0, "segmentation": [[50, 0, 100, 0, 100, 100, 50, 100]]}])
    mask, why = gc.object_region(gc.annotation_index(inst), 7, 40)
    assert why == "" and mask.shape == (40, 40)
    assert mask[:, :20].all() and not mask[:, 20:].any()
    uniform = np.full((40, 40), 1 / 1600)
    assert gc.object_share(uniform, mask) == pytest.approx(mask.mean()) == pytest.approx(0.5)
    left = np.zeros((40, 40))
    left[:, :10] = 1 / 400
    assert gc.object_share(left, mask) == pytest.approx(1.0)
    assert gc.object_share(left, ~mask) == pytest.approx(0.0)


def test_a_crowd_region_in_run_lengths_is_read_column_by_column_through_the_crop():
    # an 8x4 image whose first 4 columns (16 pixels, column by column) are crowd; the crop keeps x 2-6
    crowd = {"image_id": 7, "iscrowd": 1, "segmentation": {"counts": [0, 16, 16], "size": [4, 8]}}
    mask = gc.rle_mask(crowd["segmentation"], 8, 4, 4)
    assert mask[:, :2].all() and not mask[:, 2:].any()
    poly = {"image_id": 7, "iscrowd": 0, "segmentation": [[4, 0, 6, 0, 6, 4, 4, 4]]}  # x 4-6: the right half
    both, why = gc.object_region(gc.annotation_index(_instances([crowd, poly], 8, 4)), 7, 4)
    assert why == "" and both.all()  # crowd and polygon together cover the square


def test_photographs_without_drawable_objects_say_why():
    poly = {"image_id": 7, "iscrowd": 0, "segmentation": [[50, 0, 100, 0, 100, 100, 50, 100]]}
    crowd = {"image_id": 7, "iscrowd": 1, "segmentation": {"counts": "PQ10a0", "size": [100, 200]}}
    outside = {"image_id": 7, "iscrowd": 0, "segmentation": [[0, 0, 40, 0, 40, 100, 0, 100]]}
    assert gc.object_region(gc.annotation_index(_instances([poly, crowd])), 7, 40) == (None, gc.CROWD)
    assert gc.object_region(gc.annotation_index(_instances([])), 7, 40) == (None, gc.NO_OBJECT)
    assert gc.object_region(gc.annotation_index(_instances([poly])), 8, 40) == (None, gc.NOT_ANNOTATED)
    assert gc.object_region(gc.annotation_index(_instances([outside])), 7, 40) == (None, gc.CUT_AWAY)


# -- the step and the chapter's calls -------------------------------------------------------------

@pytest.fixture
def study(data_root):
    """Three real (with COCO ids) and two generated smoke test images at 64 px, a random tiny ConvNeXt
    checkpoint where the trainer puts it, and the instances file of the real ones."""
    profile = get_profile("smoke", {"image_size": 64})
    rng = np.random.default_rng(0)
    rows = []
    for label, n in (("real", 3), ("generated", 2)):
        for i in range(n):
            rel = f"smoke/images/{label}/test/{label}_{i}.jpg"
            (data_root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(data_root / rel)
            rows.append({"path": rel, "label": mf.LABELS[label], "label_name": label, "split": "test",
                         "source": "coco-val2017" if label == "real" else "sd2"}
                        | ({"coco_id": 100 + i} if label == "real" else {}))
    mf.write_part("smoke", "real", pd.DataFrame([r for r in rows if r["label"] == 0]))
    mf.write_part("smoke", "generated", pd.DataFrame([r for r in rows if r["label"] == 1]))
    checkpoint = default_checkpoint(profile)
    checkpoint.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save({"model": build_model(profile, pretrained="none").state_dict()}, checkpoint)
    # photograph 100 is 128x64 (the crop keeps x 32-96): its object is the left half of the square;
    # 101's object is its top quarter; 102's crowd region is compressed RLE, left out
    inst = {"images": [{"id": 100, "width": 128, "height": 64}, {"id": 101, "width": 64, "height": 64},
                       {"id": 102, "width": 64, "height": 64}],
            "annotations": [{"image_id": 100, "iscrowd": 0, "segmentation": [[32, 0, 64, 0, 64, 64, 32, 64]]},
                            {"image_id": 101, "iscrowd": 0, "segmentation": [[0, 0, 64, 0, 64, 16, 0, 16]]},
                            {"image_id": 102, "iscrowd": 1, "segmentation": {"counts": "0Pa4", "size": [64, 64]}}]}
    path = gradcam_step.instances_path(profile)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(inst))
    return profile


def test_the_step_writes_the_figure_and_the_check_and_reads_them_back(study, capsys):
    gradcam_step.run(study)
    table, maps, info = gradcam_step.load_figure(study)
    assert list(info["groups"][:2]) == [gradcam_step.REAL, gradcam_step.GENERATED]
    assert len(table) == len(maps) == 5 and table["p_generated"].between(0, 1).all()
    assert "controls --profile smoke" in info["notes"]["control: null"]  # not made: says which command
    assert "evaluate --profile smoke" in info["notes"]["DALL-E 2 called real"]
    summary, masses = gradcam_step.load_masses(study)
    assert summary["available"] and summary["left_out"] == {gc.CROWD: 1}
    assert masses["coco_id"].tolist() == [100, 101]
    np.testing.assert_allclose(masses["area_share"], [0.5, 0.25])
    full = masses[~masses["empty"]]
    assert full["object_mass"].between(0, 1).all() and len(full) == 2
    capsys.readouterr()
    gradcam_step.run(study)
    out = capsys.readouterr().out
    assert out.count("already computed") == 2
    fig = ch6_gradcam.figure(study)
    assert len(fig.axes) >= 4 * 5
    plt.close(fig)
    check = ch6_gradcam.mass_check(study, n_boot=200)
    assert check["available"] and check["photographs"] == 2
    assert check["area_share"] == pytest.approx(0.375)
    assert check["difference"] == pytest.approx(check["mass_on_objects"] - 0.375)
    assert "mean Grad-CAM mass on the objects" in ch6_gradcam.mass_table(study, n_boot=200).index
    plt.close(ch6_gradcam.mass_plot(study))


def test_without_instance_annotations_the_check_says_it_is_not_available(study):
    gradcam_step.instances_path(study).unlink()
    gradcam_step.run(study)
    summary, masses = gradcam_step.load_masses(study)
    assert not summary["available"] and masses is None
    assert "instances_val2017.json does not exist" in summary["reason"]
    table = ch6_gradcam.mass_table(study)
    assert table.index.tolist() == [ch6_gradcam.NOT_AVAILABLE]
    assert ch6_gradcam.mass_text(study).startswith("The object check is not available in this profile")
    assert str(coco_dir(study)) not in ch6_gradcam.mass_text(study)  # no absolute path of this machine


def test_results_not_computed_name_the_command(data_root):
    profile = get_profile("smoke")
    with pytest.raises(gc.GradCamError, match="python -m helpers gradcam --profile smoke"):
        gradcam_step.load_figure(profile)
    with pytest.raises(gc.GradCamError, match="python -m helpers gradcam --profile smoke"):
        ch6_gradcam.mass_check(profile)


def test_a_profile_without_other_generators_names_the_setting_that_adds_them(study):
    profile = get_profile("smoke", {"image_size": 64, "dalle2_dir": "", "imagen_dir": ""})
    groups, notes = gradcam_step.transfer_groups(profile, default_checkpoint(profile), 4)
    assert groups == {} and "--set dalle2_dir=" in notes["DALL-E 2 called real"]
    assert "--set imagen_dir=" in notes["Imagen called real"]


def test_the_transfer_group_holds_the_images_chapter_5_called_real(study):
    folder = standin_path(study, "DALL-E 2")
    folder.mkdir(parents=True)
    paths = []
    for i in range(3):  # not square and not at the study's side: the common format crops and resizes
        Image.fromarray(np.full((48, 80, 3), 40 * i, dtype=np.uint8)).save(folder / f"d{i}.png")
        paths.append(str(folder / f"d{i}.png"))
    name = eval_name(default_checkpoint(study), folder.name)
    predictions = pd.DataFrame({"path": paths, "label": 1, "p_generated": [0.2, 0.9, 0.4], "predicted": [0, 1, 0]})
    save_result(study, {"name": name, "settings": {}, "metrics": {}}, predictions)
    gradcam_step.run(study)
    table, maps, info = gradcam_step.load_figure(study)
    group = table[table.group == "DALL-E 2 called real"]
    assert group["path"].tolist() == [paths[0], paths[2]] and group["from_folder"].all()
    assert group["p_generated"].between(0, 1).all() and "DALL-E 2 called real" in info["groups"]
    plt.close(ch6_gradcam.figure(study, groups=["DALL-E 2 called real"]))
