import pytest

from helpers.profiles import PROFILES, ProfileError, get_profile, parse_sets, to_sets


def test_default_is_smoke(monkeypatch):
    monkeypatch.delenv("BOOK_PROFILE", raising=False)
    assert get_profile().name == "smoke"


def test_environment_variable_chooses(monkeypatch):
    monkeypatch.setenv("BOOK_PROFILE", "paper")
    assert get_profile().name == "paper"
    assert get_profile("course").name == "course"  # the argument wins


def test_unknown_profile_lists_the_valid_ones(monkeypatch):
    monkeypatch.setenv("BOOK_PROFILE", "huge")
    with pytest.raises(ProfileError, match=r"'huge'.*BOOK_PROFILE.*smoke, course, paper"):
        get_profile()


def test_paper_profile_has_the_papers_counts():
    p = PROFILES["paper"]
    assert p.real_counts == {"train": 10_000, "val": 1_900, "test": 1_500}
    assert p.gen_counts == {"train": 7_000, "val": 1_900, "test": 1_500}
    assert (p.sd_model, p.sd_resolution, p.image_size) == ("stabilityai/stable-diffusion-2", 768, 384)


def test_course_is_a_twentieth_of_the_paper():
    c, p = PROFILES["course"], PROFILES["paper"]
    for split in ("train", "val", "test"):
        assert c.real_counts[split] * 20 == p.real_counts[split]
        assert c.gen_counts[split] * 20 == p.gen_counts[split]


def test_overrides_are_coerced_and_checked():
    p = get_profile("smoke", {"real_train": "12", "sd_guidance": 3, "jpeg_quality": 90})
    assert (p.real_train, p.sd_guidance, p.jpeg_quality) == (12, 3.0, 90)
    assert get_profile("smoke").real_train == 24  # the definitions are not changed


@pytest.mark.parametrize("key,value,message", [
    ("real_trian", 3, "unknown setting 'real_trian'; valid settings: real_source"),
    ("real_train", 0, "at least 1"),
    ("real_train", "many", "needs a int"),
    ("sd_dtype", "float8", "must be one of float16, bfloat16, float32"),
    ("jpeg_quality", 101, "1..100"),
    ("sd_resolution", 100, "multiple of 8"),
    ("real_train", True, "does not take"),
    ("name", "x", "unknown setting"),
])
def test_bad_overrides_are_refused(key, value, message):
    with pytest.raises(ProfileError, match=message):
        get_profile("smoke", {key: value})


def test_set_flags_round_trip():
    assert parse_sets(to_sets({"a": 1, "b": "x"})[1::2]) == {"a": "1", "b": "x"}
    with pytest.raises(ProfileError, match="KEY=VALUE"):
        parse_sets(["novalue"])
