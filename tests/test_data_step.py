"""The data step end to end: smoke's stand-ins, and the COCO code path against 127.0.0.1."""


import pandas as pd
import pytest
from conftest import jpeg
from PIL import Image

from helpers.data import coco
from helpers.data import real_data
from helpers.data import manifest as mf
from helpers.core.profiles import get_profile
from helpers.core.stamps import StaleOutputError

SMALL = dict(real_train=10, real_val=3, real_test=4, gen_train=6, gen_val=3, gen_test=4,
             download_workers=4, download_retries=1)


@pytest.fixture
def coco_server(coco_mirror):
    """A tiny COCO 2017, served like cocodataset.org (conftest.serve_coco)."""
    return coco_mirror


def test_coco_path_downloads_only_the_sampled_images(data_root, coco_server):
    profile = get_profile("course", SMALL)
    rows = real_data.run(profile)
    assert len(rows) == 17
    fetched = {p for p, _ in coco_server.requests if p.endswith(".jpg")}
    assert len(fetched) == 17  # only the plan's photographs, not the whole set
    frame = mf.load("course")
    assert mf.counts(frame).loc["real"].to_dict() == {"train": 10, "val": 3, "test": 4, "total": 17}
    img = Image.open(data_root / frame.path.iloc[0])
    assert img.size == (384, 384) and img.format == "JPEG"
    assert (data_root / "coco" / "annotations" / "captions_val2017.json").exists()
    # a second run reuses everything
    before = len(coco_server.requests)
    real_data.run(profile)
    assert len(coco_server.requests) == before


def test_bad_images_on_the_server_are_replaced_from_the_reserve(data_root, coco_server):
    profile = get_profile("course", SMALL)
    real, _ = real_data.make_plans(profile)
    first, second = real.iloc[0], real.iloc[1]
    del coco_server.files[f"/{first.coco_subset}/{first.file_name}"]  # 404
    good = coco_server.files[f"/{second.coco_subset}/{second.file_name}"]
    coco_server.files[f"/{second.coco_subset}/{second.file_name}"] = good[: len(good) // 3]  # truncated
    assert len(real_data.run(profile)) == 17
    frame = mf.load("course")
    assert not {first.coco_id, second.coco_id} & set(frame.coco_id)
    assert sorted(frame.replaces.dropna()) == sorted([first.coco_id, second.coco_id])
    assert not list((data_root / "coco").rglob("*.part"))
    assert not (data_root / "coco" / second.coco_subset / second.file_name).exists()


def test_size_mismatch_with_the_annotation_is_replaced(data_root, coco_server):
    profile = get_profile("course", SMALL)
    real, _ = real_data.make_plans(profile)
    row = real.iloc[0]
    coco_server.files[f"/{row.coco_subset}/{row.file_name}"] = jpeg(50, 50, 1)
    assert len(real_data.run(profile)) == 17
    plan = pd.read_csv(data_root / "course" / "plan_real.csv", keep_default_na=False)
    failed = plan[plan.split == "failed"]
    assert list(failed.coco_id) == [row.coco_id] and "decoded size 50x50" in failed.reason.iloc[0]


def test_offline_says_what_to_download_and_where(data_root, monkeypatch):
    monkeypatch.setenv(coco.URL_ENV, "http://127.0.0.1:9")
    with pytest.raises(real_data.DataError) as info:
        real_data.run(get_profile("course", SMALL))
    message = str(info.value)
    assert "annotations_trainval2017.zip" in message and str(data_root / "coco") in message
    assert "captions_train2017.json" in message


def test_smoke_builds_its_standins_and_labels_them(data_root):
    profile = get_profile("smoke")
    rows = real_data.run(profile)
    assert len(rows) == sum(profile.real_counts.values())
    assert set(rows["source"]) == {"standin-train2017", "standin-val2017"}
    assert set(rows["label_name"]) == {"real"}


def test_changed_format_settings_are_refused(data_root):
    real_data.run(get_profile("smoke"))
    with pytest.raises(StaleOutputError, match="jpeg_quality: 95 on disk, 80 now"):
        real_data.run(get_profile("smoke", {"jpeg_quality": 80}))
