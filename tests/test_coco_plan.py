"""The seeded sampling of the study's splits."""

import pandas as pd
import pytest

from helpers.data.coco import image_seed, make_plan, normalise
from helpers.core.profiles import PROFILES, get_profile


def _table(n, start=1, shared_every=7):
    """A COCO-like captions table; every 7th image repeats a caption used elsewhere."""
    rows = []
    for i in range(start, start + n):
        caps = [f"Image {i} caption {k}." for k in range(5)]
        if i % shared_every == 0:
            caps[0] = "A man riding a wave on top of a surfboard."
            caps[1] = "a man riding a wave on top of a surfboard"
        rows.append(dict(id=i, file_name=f"{i:012d}.jpg", width=640, height=480, captions=caps))
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def big_tables():
    return _table(21_000), _table(3_100, start=1_000_000)


@pytest.mark.parametrize("name", list(PROFILES))
def test_counts_match_each_profile(name, big_tables):
    profile = PROFILES[name]
    real, gen = make_plan(profile, *big_tables)
    assert real["split"].value_counts().to_dict() == {k: v for k, v in profile.real_counts.items()}
    assert gen["split"].value_counts().to_dict() == {k: v for k, v in profile.gen_counts.items()}


@pytest.mark.parametrize("name", list(PROFILES))
def test_splits_are_disjoint_by_id_and_caption(name, big_tables):
    real, gen = make_plan(PROFILES[name], *big_tables)
    ids = list(real["coco_id"]) + list(gen["coco_id"])
    assert len(ids) == len(set(ids))
    train, val = big_tables
    captions_of = pd.concat([train, val]).set_index("id")["captions"]
    real_caps = {normalise(c) for i in real["coco_id"] for c in captions_of[i]}
    gen_caps = [normalise(c) for c in gen["caption"]]
    assert len(gen_caps) == len(set(gen_caps))  # no caption generated twice
    assert not real_caps & set(gen_caps)  # no caption of a real image is generated


def test_real_test_and_generated_test_come_from_val2017(big_tables):
    real, gen = make_plan(PROFILES["paper"], *big_tables)
    assert set(real[real.split == "test"].coco_subset) == {"val2017"}
    assert set(real[real.split != "test"].coco_subset) == {"train2017"}
    assert set(gen[gen.split == "test"].coco_subset) == {"val2017"}
    assert set(gen[gen.split != "test"].coco_subset) == {"train2017"}


def test_same_seed_same_plan_other_seed_other_plan(big_tables):
    p = PROFILES["course"]
    a, b = make_plan(p, *big_tables), make_plan(p, *big_tables)
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_frame_equal(a[1], b[1])
    c = make_plan(get_profile("course", {"seed": 1}), *big_tables)
    assert set(c[0]["coco_id"]) != set(a[0]["coco_id"])


def test_one_seed_per_image_and_stable():
    assert image_seed(1, 42) == image_seed(1, 42)
    seeds = {image_seed(2024, i) for i in range(10_000)}
    assert len(seeds) == 10_000 and max(seeds) < 2 ** 63


def test_too_few_images_is_a_clear_error():
    with pytest.raises(ValueError, match="train2017 has 50 captioned images; profile 'course' needs 1040"):
        make_plan(PROFILES["course"], _table(50), _table(500, start=10_000))


@pytest.mark.parametrize("name", list(PROFILES))
def test_the_reserve_is_disjoint_and_leaves_the_plan_as_it_was(name, big_tables):
    from helpers.data.coco import plan_with_reserve, reserve_size

    profile = PROFILES[name]
    real, gen, reserve = plan_with_reserve(profile, *big_tables)
    pd.testing.assert_frame_equal(real, make_plan(profile, *big_tables)[0])
    pd.testing.assert_frame_equal(gen, make_plan(profile, *big_tables)[1])
    assert reserve.split.unique().tolist() == ["reserve"]
    sizes = {"train2017": reserve_size(profile.real_train + profile.real_val),
             "val2017": reserve_size(profile.real_test)}
    if name == "paper":  # 21,000 images hold 20,800 of the study and 200 spare: the reserve takes those
        sizes["train2017"] = 200
    assert reserve.coco_subset.value_counts().to_dict() == sizes
    assert not set(reserve.coco_id) & (set(real.coco_id) | set(gen.coco_id))
    train, val = big_tables
    captions_of = pd.concat([train, val]).set_index("id")["captions"]
    reserve_caps = {normalise(c) for i in reserve.coco_id for c in captions_of[i]}
    assert not reserve_caps & {normalise(c) for c in gen.caption}  # promoted, still never generated


def _pairs(n, start):
    """Images in pairs that share their one caption: a generated image's partner must not be a reserve."""
    return pd.DataFrame([dict(id=i, file_name=f"{i:012d}.jpg", width=640, height=480,
                              captions=[f"Pair {(i - start) // 2}."]) for i in range(start, start + n)])


@pytest.mark.parametrize("seed", range(5))
def test_no_reserve_image_shares_a_caption_with_a_generated_one(seed):
    from helpers.data.coco import plan_with_reserve

    _, gen, reserve = plan_with_reserve(get_profile("smoke", {"seed": seed}), _pairs(200, 1),
                                        _pairs(120, 10_000))
    assert len(reserve) == 10
    assert not {normalise(c) for c in reserve.caption} & {normalise(c) for c in gen.caption}


def test_a_reserve_image_is_at_least_five_and_two_percent():
    from helpers.data.coco import reserve_size
    assert [reserve_size(n) for n in (4, 250, 595, 11_900)] == [5, 5, 12, 238]
