"""Defect 5: photographs missing or corrupt on the server are replaced from the plan's seeded
reserve, recorded in plan_real.csv and the manifest, and replayed (not fetched again) by a rerun."""

import pandas as pd
from conftest import jpeg
from test_coco_mirror_url import COUNTS, SETS

from helpers.data import real_data
from helpers.data import manifest as mf
from helpers.__main__ import main
from helpers.core.profiles import get_profile


def _url(row) -> str:
    return f"/{row.coco_subset}/{row.file_name}"


def _plan(data_root) -> pd.DataFrame:
    return pd.read_csv(data_root / "course" / "plan_real.csv", keep_default_na=False)


def test_missing_and_corrupt_photographs_are_replaced_and_a_rerun_replays_them(data_root, coco_mirror, capsys):
    drawn, _ = real_data.make_plans(get_profile("course", COUNTS))
    real, reserve = drawn[drawn.split != "reserve"], drawn[drawn.split == "reserve"]
    train, test = real[real.split == "train"], real[real.split == "test"]
    gone, cut, wrong_size = train.iloc[0], train.iloc[1], test.iloc[0]
    grey, cmyk, flaky = train.iloc[2], train.iloc[3], train.iloc[4]
    del coco_mirror.files[_url(gone)]  # HTTP 404
    coco_mirror.files[_url(cut)] = coco_mirror.files[_url(cut)][:300]  # a truncated JPEG
    coco_mirror.files[_url(wrong_size)] = jpeg(30, 30, 0)  # not the size the annotation says
    del coco_mirror.files[_url(reserve.iloc[0])]  # the first reserve is missing too: the next one steps in
    coco_mirror.files[_url(grey)] = jpeg(grey.width, grey.height, 1, mode="L")  # good, only greyscale
    coco_mirror.files[_url(cmyk)] = jpeg(cmyk.width, cmyk.height, 2, mode="CMYK")
    coco_mirror.drop_after[_url(flaky)] = 100  # a transfer broken off once: retried, not replaced

    assert main(["data", "--profile", "course", *SETS]) == 0
    out = capsys.readouterr().out
    assert "could not be fetched" not in out and "replaced by reserve" in out
    frame = mf.load("course")
    assert mf.counts(frame).loc["real"].to_dict() == {"train": 10, "val": 3, "test": 4, "total": 17}
    assert {grey.coco_id, cmyk.coco_id, flaky.coco_id} <= set(frame.coco_id)
    assert not {gone.coco_id, cut.coco_id, wrong_size.coco_id} & set(frame.coco_id)
    assert sorted(frame.replaces.dropna()) == sorted([gone.coco_id, cut.coco_id, wrong_size.coco_id])

    plan = _plan(data_root)
    failed = plan[plan.split == "failed"].set_index("coco_id").reason
    assert set(failed.index) == {gone.coco_id, cut.coco_id, wrong_size.coco_id, reserve.iloc[0].coco_id}
    assert "HTTP 404" in failed[gone.coco_id] and "decoded size 30x30" in failed[wrong_size.coco_id]
    stand_in = plan[plan.replaces.astype(str) == str(wrong_size.coco_id)].iloc[0]
    assert stand_in.split == "test" and stand_in.coco_subset == "val2017"
    assert set(plan.split) == {"train", "val", "test", "failed", "reserve"}

    # a rerun: the same set, nothing fetched again, the failures replayed from plan_real.csv
    manifest_before = (data_root / "course" / "manifest.csv").read_bytes()
    plan_before = (data_root / "course" / "plan_real.csv").read_bytes()
    requests_before = len(coco_mirror.requests)
    assert main(["data", "--profile", "course", *SETS]) == 0
    assert len(coco_mirror.requests) == requests_before
    assert (data_root / "course" / "manifest.csv").read_bytes() == manifest_before
    assert (data_root / "course" / "plan_real.csv").read_bytes() == plan_before


def test_when_the_reserve_runs_out_the_error_says_how_many_and_what_to_do(data_root, coco_mirror, capsys):
    drawn, _ = real_data.make_plans(get_profile("course", COUNTS))
    val2017 = drawn[drawn.coco_subset == "val2017"]  # the 4 test photographs and their 4 reserves
    for row in val2017.itertuples():
        del coco_mirror.files[_url(row)]
    for attempt in range(2):
        assert main(["data", "--profile", "course", *SETS]) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err and "could not be fetched" not in err
        assert "error: 4 of 17 photographs are missing" in err and "reserve" in err
        assert "coco_url" in err and "real_train" in err
        if attempt == 0:
            requests_after_first = len(coco_mirror.requests)
    assert len(coco_mirror.requests) == requests_after_first  # the failures were replayed, not refetched
    assert len(mf.load("course")) == 13  # what could be made is kept


def test_the_replacements_depend_only_on_the_set_of_failures(data_root, coco_mirror):
    drawn, _ = real_data.make_plans(get_profile("course", COUNTS))
    ids = list(drawn[drawn.coco_subset == "train2017"].coco_id)
    one = real_data.real_plan(drawn, {ids[0]: "a", ids[5]: "b", ids[13]: "c"})
    other = real_data.real_plan(drawn, {ids[13]: "c", ids[5]: "b", ids[0]: "a"})
    pd.testing.assert_frame_equal(one, other)
    assert len(real_data.active(one)) == 17
    assert list(one[one.replaces.astype(str) != ""].replaces) == [ids[0], ids[5]]
