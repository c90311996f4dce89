"""``coco_url`` / ``$BOOK_COCO_URL``: the data step against a COCO look-alike on 127.0.0.1, through
``python -m helpers data`` (the code path a user's mirror and the rehearsal take)."""


import pytest

from conftest import serve_coco

from helpers.data import coco
from helpers.data import manifest as mf
from helpers.__main__ import main
from helpers.core.profiles import get_profile

COUNTS = dict(real_train=10, real_val=3, real_test=4, gen_train=6, gen_val=3, gen_test=4,
              download_workers=4, download_retries=1)
SETS = [flag for k, v in COUNTS.items() for flag in ("--set", f"{k}={v}")]
ZIP = "/annotations/annotations_trainval2017.zip"


@pytest.fixture
def mirror(data_root, file_server, monkeypatch):
    monkeypatch.delenv("BOOK_SET", raising=False)
    monkeypatch.delenv(coco.URL_ENV, raising=False)
    serve_coco(file_server)
    return file_server


def test_the_override_beats_the_environment_which_beats_coco_itself(monkeypatch):
    monkeypatch.delenv(coco.URL_ENV, raising=False)
    assert coco.base_url(get_profile("course")) == coco.OFFICIAL_URL == "http://images.cocodataset.org"
    monkeypatch.setenv(coco.URL_ENV, "http://mirror.example:8000/coco/")
    assert coco.base_url(get_profile("course")) == "http://mirror.example:8000/coco"
    assert coco.base_url(get_profile("course", {"coco_url": "http://other/x"})) == "http://other/x"
    assert coco.annotations_url("http://m") == "http://m/annotations/annotations_trainval2017.zip"
    assert coco.image_url("http://m", "val2017", "1.jpg") == "http://m/val2017/1.jpg"


def test_the_data_step_fetches_everything_from_the_mirror(mirror, monkeypatch, capsys):
    monkeypatch.setenv(coco.URL_ENV, mirror.url)
    assert main(["data", "--profile", "course", *SETS]) == 0
    out = capsys.readouterr().out
    assert f"{mirror.url}{ZIP} is not COCO's official release" in out  # said once, not refused
    assert out.count("not COCO's official release") == 1
    fetched = [p for p, _ in mirror.requests]
    assert fetched.count(ZIP) == 1 and len([p for p in fetched if p.endswith(".jpg")]) == 17
    assert mf.counts(mf.load("course")).loc["real", "total"] == 17


def test_set_coco_url_beats_the_environment(mirror, monkeypatch):
    monkeypatch.setenv(coco.URL_ENV, "http://127.0.0.1:9")  # nothing listens there
    assert main(["data", "--profile", "course", *SETS, "--set", f"coco_url={mirror.url}"]) == 0
    assert len(mf.load("course")) == 17


def test_a_mirror_zip_without_the_caption_files_is_a_clear_error(data_root, file_server, monkeypatch, capsys):
    monkeypatch.delenv("BOOK_SET", raising=False)
    serve_coco(file_server, subsets=("train2017",))
    monkeypatch.setenv(coco.URL_ENV, file_server.url)
    assert main(["data", "--profile", "course", *SETS]) == 1
    err = capsys.readouterr().err
    assert "\nerror: " in "\n" + err.replace("\r", "\n") and "Traceback" not in err
    assert f"{file_server.url}{ZIP}" in err and "lacks captions_val2017.json" in err
    assert not (data_root / "coco" / "annotations_trainval2017.zip").exists()


def test_cocos_own_server_keeps_the_md5_as_a_hard_check(data_root, file_server, monkeypatch, capsys):
    monkeypatch.delenv("BOOK_SET", raising=False)
    monkeypatch.delenv(coco.URL_ENV, raising=False)
    serve_coco(file_server)  # a well-formed zip, but not COCO's bytes
    monkeypatch.setattr(coco, "OFFICIAL_URL", file_server.url)  # the official server, at loopback
    assert main(["data", "--profile", "course", *SETS]) == 1
    captured = capsys.readouterr()
    assert f"expected {coco.ANNOTATIONS_MD5}" in captured.err and "Traceback" not in captured.err
    assert "not COCO's official release" not in captured.out
