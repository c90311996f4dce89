import pytest

from helpers.core.profiles import PROFILES, ProfileError, get_profile, parse_sets, to_sets


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


def test_book_set_overrides_every_profile_read_of_a_build(monkeypatch):
    monkeypatch.setenv("BOOK_SET", "real_train=40 gen_train=30 train_img_size=64")
    p = get_profile("course")
    assert (p.real_train, p.gen_train, p.train_img_size) == (40, 30, 64)
    assert p.real_val == PROFILES["course"].real_val  # the rest is the profile's
    assert "changed from the published profile: real_train=40 gen_train=30 train_img_size=64" in p.describe()


def test_own_overrides_win_over_book_set(monkeypatch):
    monkeypatch.setenv("BOOK_SET", "real_train=40 gen_train=30")
    p = get_profile("course", {"real_train": "12"})
    assert (p.real_train, p.gen_train) == (12, 30)


def test_book_set_errors_name_the_variable(monkeypatch):
    monkeypatch.setenv("BOOK_SET", "real_trian=40")
    with pytest.raises(ProfileError, match=r"'real_trian' \(in \$BOOK_SET\)"):
        get_profile("course")
    monkeypatch.setenv("BOOK_SET", "real_train")
    with pytest.raises(ProfileError, match=r"\$BOOK_SET='real_train' is not a list of KEY=VALUE"):
        get_profile("course")


def test_book_set_reaches_a_command(monkeypatch, data_root, capsys):
    """Every command of a build reads $BOOK_SET: the describe line of a command shows it."""
    from helpers.__main__ import main

    monkeypatch.setenv("BOOK_SET", "real_train=ten")
    assert main(["data", "--profile", "smoke"]) == 2
    assert "'real_train' needs a int, got 'ten'" in capsys.readouterr().err


def test_a_published_profile_describes_no_changes():
    assert "changed from" not in get_profile("paper").describe()
