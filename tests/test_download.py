"""The download code against a tiny file server on 127.0.0.1 (no network)."""

import hashlib
import os

import pytest

from helpers.core.download import DownloadError, Job, download_file, download_many

BODY = os.urandom(300_000)


def test_fetches_and_verifies_md5(tmp_path, file_server):
    file_server.files["/a.bin"] = BODY
    dest = download_file(file_server.url + "/a.bin", tmp_path / "a.bin",
                         md5=hashlib.md5(BODY).hexdigest())
    assert dest.read_bytes() == BODY
    assert not (tmp_path / "a.bin.part").exists()


def test_broken_transfer_resumes_with_a_range_request(tmp_path, file_server):
    file_server.files["/a.bin"] = BODY
    file_server.drop_after["/a.bin"] = 100_000
    dest = download_file(file_server.url + "/a.bin", tmp_path / "a.bin", retries=2)
    assert dest.read_bytes() == BODY
    ranges = [r for p, r in file_server.requests if p == "/a.bin"]
    assert ranges[0] is None and ranges[1].startswith("bytes=")
    assert 0 < int(ranges[1][6:-1]) <= 100_000  # resumed from what had arrived


def test_a_part_file_left_by_a_killed_run_is_resumed(tmp_path, file_server):
    file_server.files["/a.bin"] = BODY
    (tmp_path / "a.bin.part").write_bytes(BODY[:123_456])
    download_file(file_server.url + "/a.bin", tmp_path / "a.bin")
    assert (tmp_path / "a.bin").read_bytes() == BODY
    assert file_server.requests == [("/a.bin", "bytes=123456-")]


def test_transfer_that_keeps_breaking_errors_and_keeps_the_part_for_next_time(tmp_path, file_server):
    file_server.files["/a.bin"] = BODY
    file_server.drop_after["/a.bin"] = 0  # never sends a byte
    file_server.drop_times["/a.bin"] = 99
    with pytest.raises(DownloadError, match="broke off 2 times.*next run resumes"):
        download_file(file_server.url + "/a.bin", tmp_path / "a.bin", retries=1)
    assert not (tmp_path / "a.bin").exists()


def test_404_is_a_clear_error_and_leaves_nothing(tmp_path, file_server):
    with pytest.raises(DownloadError, match=r"HTTP 404.*place it at .*missing.jpg"):
        download_file(file_server.url + "/missing.jpg", tmp_path / "missing.jpg")
    assert list(tmp_path.iterdir()) == []


def test_corrupt_file_is_deleted(tmp_path, file_server):
    file_server.files["/a.bin"] = BODY
    with pytest.raises(DownloadError, match="corrupt file.*md5.*deleted"):
        download_file(file_server.url + "/a.bin", tmp_path / "a.bin", md5="0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_truncated_on_the_server_fails_the_callers_check(tmp_path, file_server):
    file_server.files["/a.jpg"] = b"\xff\xd8\xff\xe0 half a jpeg"

    def verify(path):
        raise ValueError("truncated image")

    with pytest.raises(DownloadError, match="truncated image"):
        download_file(file_server.url + "/a.jpg", tmp_path / "a.jpg", verify=verify)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_says_what_to_do(tmp_path):
    with pytest.raises(DownloadError, match="place it at"):
        download_file("http://127.0.0.1:9/x.zip", tmp_path / "x.zip", retries=0, timeout=2)


def test_many_in_parallel_report_failures_without_stopping(tmp_path, file_server):
    for i in range(10):
        file_server.files[f"/{i}.bin"] = BODY[i:i + 1000]
    jobs = [Job(file_server.url + f"/{i}.bin", tmp_path / f"{i}.bin") for i in range(12)]
    failures = download_many(jobs, workers=4)
    assert sorted(p.name for p in failures) == ["10.bin", "11.bin"]
    assert all((tmp_path / f"{i}.bin").read_bytes() == BODY[i:i + 1000] for i in range(10))
    # a second run fetches nothing already there
    before = len(file_server.requests)
    download_many(jobs[:10], workers=4)
    assert len(file_server.requests) == before


def test_a_file_rejected_once_is_fetched_again_and_kept_when_whole(tmp_path, file_server):
    file_server.files["/a.jpg"] = BODY
    calls = []

    def verify(path):
        calls.append(path.read_bytes())
        if len(calls) == 1:
            raise ValueError("damaged on the way")

    download_file(file_server.url + "/a.jpg", tmp_path / "a.jpg", verify=verify)
    assert (tmp_path / "a.jpg").read_bytes() == BODY and len(calls) == 2
    assert [p for p, _ in file_server.requests] == ["/a.jpg", "/a.jpg"]


def test_missing_and_corrupt_are_told_apart_from_the_network(tmp_path, file_server):
    from helpers.core.download import BadDownload

    file_server.files["/a.bin"] = BODY
    jobs = [Job(file_server.url + "/gone.bin", tmp_path / "gone.bin"),
            Job(file_server.url + "/a.bin", tmp_path / "a.bin", md5="0" * 32),
            Job("http://127.0.0.1:9/x.bin", tmp_path / "x.bin")]
    failures = download_many(jobs, workers=3, retries=0)
    assert {p.name: type(e).__name__ for p, e in failures.items()} == {
        "gone.bin": "BadDownload", "a.bin": "BadDownload", "x.bin": "DownloadError"}
    assert failures[tmp_path / "gone.bin"].reason == "missing on the server (HTTP 404)"
    assert failures[tmp_path / "a.bin"].reason.startswith("corrupt on the server (md5")
    assert not isinstance(failures[tmp_path / "x.bin"], BadDownload)
