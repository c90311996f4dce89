"""Generation: sharding, resuming after a kill, and two processes under torchrun (gloo, CPU)."""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers.data import manifest as mf
from helpers.data import real_data
from helpers.data.generate import raw_path, read_plan, shard
from helpers.core.profiles import get_profile

STEPS = "sd_steps=12"  # slow enough to stop mid-run


def _env(data_root):
    env = dict(os.environ, BOOK_DATA_ROOT=str(data_root), PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    env.pop("BOOK_PROFILE", None)
    return env


def _generated(data_root):
    return sorted((data_root / "smoke" / "images" / "generated").rglob("*.jpg"))


def test_shards_are_disjoint_and_cover_the_plan():
    plan = pd.DataFrame({"key": [f"k{i}" for i in range(23)]})
    for world in (1, 2, 3, 8):
        keys = [k for r in range(world) for k in shard(plan, r, world)["key"]]
        assert sorted(keys) == sorted(plan["key"]) and len(keys) == len(set(keys))


def test_generate_without_a_plan_says_to_run_data_first(data_root):
    from helpers.data.generate import GenerationError
    with pytest.raises(GenerationError, match="python -m helpers data --profile smoke"):
        read_plan(get_profile("smoke"))


@pytest.mark.slow
def test_killed_and_restarted_ends_with_exactly_the_plan(data_root):
    profile = get_profile("smoke")
    real_data.run(profile)
    plan = read_plan(profile)
    cmd = [sys.executable, "-m", "helpers", "generate", "--set", STEPS]
    proc = subprocess.Popen(cmd, env=_env(data_root), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(_generated(data_root)) < 4 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(_generated(data_root))
    assert 0 < done_before < len(plan), "the run was not stopped mid-way"
    out = subprocess.run(cmd, env=_env(data_root), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"{done_before} already done" in out.stdout
    files = _generated(data_root)
    assert sorted(p.stem for p in files) == sorted(plan["key"])
    for p in files:
        img = Image.open(p)
        img.load()  # whole, decodable
        assert img.size == (profile.image_size, profile.image_size)
    leftovers = [p for p in (data_root / "smoke").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    frame = mf.load("smoke")
    gen = frame[frame.label == 1]
    assert len(gen) == len(plan) and set(gen["steps"]) == {12}
    assert gen["seed"].is_unique


@pytest.mark.slow
def test_two_processes_under_torchrun_split_the_work(data_root, tmp_path):
    profile = get_profile("smoke")
    real_data.run(profile)
    plan = read_plan(profile)
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
    out = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", "-m", "helpers", "generate",
                          "--set", "sd_steps=2"], env=_env(data_root), capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    half = len(plan) // 2
    assert f"rank 0/2 on cpu: {half} images in its shard" in out.stdout
    assert f"rank 1/2 on cpu: {len(plan) - half} images in its shard" in out.stdout
    assert sorted(p.stem for p in _generated(data_root)) == sorted(plan["key"])
    # One seed per image: the same image as a single process makes, whatever the sharding.
    two = {r.key: np.asarray(Image.open(raw_path(profile, r.split, r.key)), dtype=float)
           for r in plan.itertuples()}
    single_root = tmp_path / "single"
    shutil.copytree(data_root, single_root, ignore=shutil.ignore_patterns("generated", "settings.json"))
    out = subprocess.run([sys.executable, "-m", "helpers", "generate", "--set", "sd_steps=2"],
                         env=_env(single_root), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    os.environ["BOOK_DATA_ROOT"] = str(single_root)
    try:
        for r in plan.itertuples():
            one = np.asarray(Image.open(raw_path(profile, r.split, r.key)), dtype=float)
            assert np.abs(one - two[r.key]).mean() < 1.0, r.key
    finally:
        os.environ["BOOK_DATA_ROOT"] = str(data_root)
