"""Training (Chapter 4) on CPU, offline: gradient averaging over processes, shards, resuming after a
stop, early stopping, the heads and their weights, and two processes under torchrun (gloo)."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DistributedSampler

from helpers import augment
from helpers.classify import checkpointing, loop, train
from helpers.classify.batches import accumulation_steps
from helpers.classify.loaders import ShardSampler, training_rows, validation_rows
from helpers.classify.models import build_model, count_flops, loss_and_prob
from helpers.core import distributed
from helpers.core.checkpoints import CheckpointError
from helpers.core.profiles import get_profile
from helpers.data import generate, real_data
from helpers.data import manifest as mf

REPO = Path(__file__).resolve().parents[1]
# 3 epochs, no early stop before the last: the runs compared below all do the same work.
RUN = {"train_epochs": 3, "train_patience": 5}
# Fewer generated images than smoke's 16/8/8 (generation is most of the fixture's time): 8 for
# training (+8 augmented), 4 for validation. Training reads the manifest, so it runs on "smoke".
DATA = {"gen_train": 8, "gen_val": 4, "gen_test": 1}
EXACT = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"]  # not the timings


XL_STEP = """
import json, resource, time, torch
from helpers.classify.models import build_model, loss_and_prob
from helpers.core.profiles import get_profile
started = time.perf_counter()
torch.manual_seed(0)
model = build_model(get_profile("paper", {"train_pretrained": "none"}))
built = time.perf_counter()
logits = model(torch.randn(1, 3, 384, 384))
loss, prob = loss_and_prob(logits, torch.tensor([1]), "paper")
loss.sum().backward()
print(json.dumps(dict(
    params=sum(p.numel() for p in model.parameters()), fc=[model.head.fc.in_features, model.head.fc.out_features],
    logits=list(logits.shape), prob=prob.item(), stem_grad=model.stem[0].weight.grad.abs().sum().item(),
    fc_grad=model.head.fc.weight.grad.abs().sum().item(), build_s=built - started,
    step_s=time.perf_counter() - built, max_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6)))
"""


@pytest.fixture(scope="module", autouse=True)
def convnext_xl_job(request, tmp_path_factory):
    """The ConvNeXt-XL step (about 40 s on one core) in its own process from the module's start.

    It needs nothing the other tests make, so it runs on one core while they run on the other (each
    process on one thread: on a shared 2-core machine two threads fighting are slower than one).
    Started only when its test is selected; stopped at the module's end if still running.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    proc = None
    if any(item.name.startswith("test_convnext_xl") for item in request.session.items):
        home = tmp_path_factory.mktemp("xl")
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1",
                   BOOK_DATA_ROOT=str(home / "data"), BOOK_RESULTS_ROOT=str(home / "results"))
        proc = subprocess.Popen([sys.executable, "-c", XL_STEP], env=env, cwd=REPO, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    yield proc
    torch.set_num_threads(threads)
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory):
    """Smoke's photographs, generated and augmented images (both classes), made once."""
    root = tmp_path_factory.mktemp("train")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BOOK_DATA_ROOT", str(root / "data"))
        mp.delenv("BOOK_PROFILE", raising=False)
        real_data.run(get_profile("smoke", DATA))
        generate.run(get_profile("smoke", dict(DATA, sd_steps=2)))
        augment.step.run(get_profile("smoke", DATA), both_classes=True)
    return root


@pytest.fixture
def study(shared_root, tmp_path, monkeypatch):
    """The shared data, and results of this test's own."""
    monkeypatch.setenv("BOOK_DATA_ROOT", str(shared_root / "data"))
    monkeypatch.setenv("BOOK_RESULTS_ROOT", str(tmp_path / "results"))
    monkeypatch.delenv("BOOK_PROFILE", raising=False)
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def _use_results(monkeypatch, folder: Path) -> None:
    monkeypatch.setenv("BOOK_RESULTS_ROOT", str(folder))


def _state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=1e-6, atol=1e-7) for k in a)


# ---------------------------------------------------------------- heads and batches

def test_the_two_heads_losses_and_probabilities():
    logits = torch.tensor([[2.0, -1.0], [0.5, 3.0]])
    labels = torch.tensor([0, 1])
    loss, prob = loss_and_prob(logits, labels, "paper")
    s = torch.sigmoid(logits)
    target = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    by_hand = -(target * s.log() + (1 - target) * (1 - s).log()).mean(dim=1)
    assert torch.allclose(loss, by_hand, atol=1e-6)
    assert torch.allclose(prob, torch.sigmoid(logits[:, 1]))
    loss, prob = loss_and_prob(torch.tensor([[1.5], [-0.5]]), labels, "logit")
    assert torch.allclose(loss, torch.nn.functional.binary_cross_entropy(
        torch.sigmoid(torch.tensor([1.5, -0.5])), labels.float(), reduction="none"), atol=1e-6)
    assert torch.allclose(prob, torch.sigmoid(torch.tensor([1.5, -0.5])))


def test_the_global_batch_must_split_exactly():
    smoke = get_profile("smoke")  # 8 = 4 x world x steps
    assert accumulation_steps(smoke, 1) == 2
    assert accumulation_steps(smoke, 2) == 1
    paper = get_profile("paper")  # the paper's batch of 4 on two GPUs: 2 each
    assert accumulation_steps(paper, 2) == 1 and accumulation_steps(paper, 1) == 2
    with pytest.raises(train.TrainError, match="train_batch=4 does not split"):
        accumulation_steps(paper, 4)
    with pytest.raises(train.TrainError, match="train_batch=8 does not split"):
        accumulation_steps(smoke, 3)


@pytest.mark.parametrize("name", ["smoke", "course", "paper"])
@pytest.mark.parametrize("world", [1, 2, 4, 8])
def test_every_profile_splits_over_the_processes_its_chapters_launch(name, world):
    """A chapter launches one process per GPU (1, 2, 4, 8) or 2 on a CPU: the batch always splits,
    keeping the profile's global batch wherever it can be kept, and saying so where it cannot."""
    profile = get_profile(name)
    plan = train.batch_plan(profile, world)
    assert plan.micro_batch * world * plan.accum == plan.global_batch
    assert plan.micro_batch <= profile.train_micro_batch
    split = dataclasses.replace(profile, train_batch=plan.global_batch, train_micro_batch=plan.micro_batch)
    assert accumulation_steps(split, world) == plan.accum
    if profile.train_batch % world == 0:
        assert plan.global_batch == profile.train_batch
    else:
        assert plan.global_batch == world and "does not split over" in plan.note
    changed = (plan.global_batch, plan.micro_batch) != (profile.train_batch, profile.train_micro_batch)
    assert bool(plan.note) == changed


def test_the_papers_batch_on_eight_gpus_is_the_nearest_and_named():
    plan = train.batch_plan(get_profile("paper"), 8)
    assert (plan.global_batch, plan.micro_batch, plan.accum) == (8, 1, 1)
    assert "global batch of 4 does not split over 8 processes" in plan.note
    course = train.batch_plan(get_profile("course"), 2)  # 32 = 16 x 2 x 1
    assert (course.global_batch, course.micro_batch, course.accum) == (32, 16, 1)


def test_chapters_launch_one_process_per_gpu_or_two_on_a_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert distributed.launch_processes() == 1
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert distributed.launch_processes() == 4
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert distributed.launch_processes() == 2


@pytest.mark.parametrize("size", [2, 3])
@pytest.mark.parametrize("n", [12, 13, 2])
def test_shards_are_disjoint_and_complete(size, n):
    # validation: every image exactly once over the processes
    shards = [list(ShardSampler(n, r, size)) for r in range(size)]
    flat = [i for s in shards for i in s]
    assert sorted(flat) == list(range(n))
    # training: every image, the same number of steps on every process, a repeat only to even out
    for epoch in (0, 1):
        samplers = [DistributedSampler(range(n), num_replicas=size, rank=r, shuffle=True, seed=7)
                    for r in range(size)]
        for s in samplers:
            s.set_epoch(epoch)
        parts = [list(s) for s in samplers]
        flat = [i for p in parts for i in p]
        assert set(flat) == set(range(n)) and len({len(p) for p in parts}) == 1
        assert len(flat) - len(set(flat)) == (-n) % size
        if n % size == 0:
            assert sorted(flat) == list(range(n))


def _tiny_net():
    """Conv, GELU, average pool, LayerNorm, two outputs: the shape of the classifier, in small."""
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.GELU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2))


def _ddp_rank(rank: int, store: str, init: dict, xs, ys, out: str):
    """One of two processes (forked, gloo): DDP, 2 micro-batches of 2 images, one optimizer step."""
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        raw = _tiny_net()
        raw.load_state_dict(init)
        model = torch.nn.parallel.DistributedDataParallel(raw)
        syncs = []

        def counted(state, bucket):  # DDP's all-reduce, counted
            syncs.append(1)
            return allreduce_hook(state, bucket)

        model.register_comm_hook(None, counted)
        opt = torch.optim.SGD(model.parameters(), lr=0.5)  # SGD: Adam's first step hides a gradient's scale
        x, y = xs[4 * rank:4 * rank + 4], ys[4 * rank:4 * rank + 4]
        loop.accumulate(model, [(x[:2], y[:2]), (x[2:], y[2:])], "paper", torch.device("cpu"))
        grads = {n: p.grad.clone() for n, p in raw.named_parameters()}
        loop.optimizer_step(opt)
        if rank == 0:
            torch.save(dict(grads=grads, weights=raw.state_dict(), syncs=len(syncs)), out)
    finally:
        dist.destroy_process_group()


def _one_process(init, xs, ys, micro: int):
    model = _tiny_net()
    model.load_state_dict(init)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    batches = [(xs[i:i + micro], ys[i:i + micro]) for i in range(0, len(ys), micro)]
    loop.accumulate(model, batches, "paper", torch.device("cpu"))
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    loop.optimizer_step(opt)
    return grads, model.state_dict()


def test_two_processes_step_like_one_process_with_the_whole_batch(tmp_path):
    """2 processes x 2 micro-batches of 2 (DDP, gloo) == 1 process x 8 == 1 process x 4 micro-batches."""
    torch.manual_seed(1)
    init = _tiny_net().state_dict()
    xs = torch.randn(8, 3, 16, 16)
    ys = torch.tensor([0, 1, 1, 0, 1, 1, 1, 1])  # uneven classes per rank: a wrong average shows
    out = tmp_path / "rank0.pt"
    # forked: the children have torch and helpers already (spawning would import them again, ~5 s)
    mp.start_processes(_ddp_rank, args=(str(tmp_path / "store"), init, xs, ys, str(out)), nprocs=2,
                       join=True, start_method="fork")
    ddp = _state(out)
    assert ddp["syncs"] == 1  # one all-reduce (one bucket) for two micro-batches: no_sync before the last
    whole_grads, whole = _one_process(init, xs, ys, micro=8)
    accum_grads, accum = _one_process(init, xs, ys, micro=2)
    for name, g in whole_grads.items():
        assert torch.allclose(ddp["grads"][name], g, rtol=1e-5, atol=1e-7), name
        assert torch.allclose(accum_grads[name], g, rtol=1e-5, atol=1e-7), name
    for name, w in whole.items():
        assert torch.allclose(ddp["weights"][name], w, rtol=1e-5, atol=1e-7), name
        assert torch.allclose(accum[name], w, rtol=1e-5, atol=1e-7), name
    assert not torch.allclose(init["5.weight"], whole["5.weight"])  # the step did move the weights


# ---------------------------------------------------------------- the model and its weights

@pytest.mark.parametrize("fmt", ["safetensors", "pth"])
def test_pretrained_weights_load_through_timm_from_a_local_file(data_root, tmp_path, fmt):
    import timm
    from safetensors.torch import save_file

    donor = timm.create_model("convnext_atto", depths=(1, 1, 1, 1), dims=(16, 32, 64, 128))  # 1000 classes
    saved = {k: v.clone() for k, v in donor.state_dict().items()}
    path = tmp_path / f"weights.{fmt}"
    if fmt == "safetensors":
        save_file(saved, str(path))
    else:
        torch.save(saved, path)
    model = build_model(get_profile("smoke", {"train_pretrained": str(path)}))
    got = model.state_dict()
    backbone = [k for k in saved if not k.startswith("head.fc.")]
    assert len(backbone) > 10 and all(torch.equal(got[k], saved[k]) for k in backbone)
    assert got["head.fc.weight"].shape == (2, 128) and torch.count_nonzero(got["head.fc.bias"]) == 0
    assert "head.norm.weight" in backbone  # the head's LayerNorm is pretrained too, only the Linear is new
    logit = build_model(get_profile("smoke", {"train_pretrained": str(path), "train_head": "logit"}))
    assert logit.head.fc.out_features == 1


def test_missing_or_unreachable_weights_say_what_to_do(data_root, tmp_path, monkeypatch):
    with pytest.raises(CheckpointError, match="no published weights"):
        build_model(get_profile("smoke", {"train_pretrained": "timm"}))
    with pytest.raises(CheckpointError, match="neither 'timm', 'none' nor an existing file"):
        build_model(get_profile("smoke", {"train_pretrained": str(tmp_path / "nope.safetensors")}))
    wrong = tmp_path / "wrong.pth"
    torch.save({"stem.0.weight": torch.zeros(1)}, wrong)
    with pytest.raises(CheckpointError, match="cannot be loaded as convnext_atto weights"):
        build_model(get_profile("smoke", {"train_pretrained": str(wrong)}))

    import timm.models._builder as builder

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(builder, "load_pretrained", offline)
    profile = get_profile("smoke", {"train_model": "convnext_atto.d2_in1k", "train_pretrained": "timm"})
    with pytest.raises(CheckpointError) as info:
        build_model(profile)
    text = str(info.value)
    assert "huggingface-cli download timm/convnext_atto.d2_in1k" in text
    assert "--set train_pretrained=" in text and "cache" in text


def test_flops_of_one_forward_pass():
    model = build_model(get_profile("smoke"), pretrained="none")
    small, large = count_flops(model, 32), count_flops(model, 64)
    assert small > 0 and 3.5 < large / small < 4.5  # convolutions: four times the pixels
    assert model.training  # left as it was


# ---------------------------------------------------------------- the step

def test_training_rows_paper_control_and_without_augmentation(study):
    smoke = get_profile("smoke")
    frame = mf.load("smoke")
    paper = training_rows(smoke, frame)
    assert set(paper.source) & set(mf.AUGMENTED_SOURCES) == {"augmented"}
    control = training_rows(smoke, frame, control=True)
    # the control: as many photographs, 8 of them augmented; the same generated images
    assert control.groupby("label").size().to_dict() == paper.groupby("label").size().to_dict()
    assert (control.source == "augmented-real").sum() == smoke.augment_count
    assert sorted(control.path[control.label == 1]) == sorted(paper.path[paper.label == 1])
    plain = training_rows(smoke, mf.originals(frame))
    assert len(plain) == len(mf.originals(frame).query("split == 'train'"))
    with pytest.raises(train.TrainError, match="--both-classes"):
        training_rows(smoke, frame[frame.source != "augmented-real"], control=True)
    val = validation_rows(frame)
    assert set(val.split) == {"val"} and set(val.label) == {0, 1}


def _assert_same_run(resumed, straight, out_b, out_a) -> None:
    """A resumed run ended with the metrics and the weights of one never stopped."""
    pd.testing.assert_frame_equal(resumed[EXACT], straight[EXACT], check_exact=False, rtol=1e-9)
    for name in ("best.pt", "last.pt"):
        a, b = _state(out_a / name), _state(out_b / name)
        assert a["epoch"] == b["epoch"] and _same_weights(a["model"], b["model"]), name


class Stop(Exception):
    """A stand-in for a kill."""


def test_stopped_and_resumed_ends_like_an_uninterrupted_run(study, monkeypatch, capsys):
    profile = get_profile("smoke", RUN)
    _use_results(monkeypatch, study / "straight")
    straight = train.run(profile)
    assert list(straight.epoch) == [1, 2, 3]
    out_a = train.run_dir(profile)
    assert {p.name for p in out_a.iterdir()} >= {"metrics.csv", "last.pt", "best.pt", "config.json"}

    # stop 1: just after epoch 1's last.pt, before its metrics.csv row
    _use_results(monkeypatch, study / "stopped")
    real_write = train.write_metrics

    def write_then_stop(history, path):
        if len(history) == 1:
            raise Stop
        return real_write(history, path)

    monkeypatch.setattr(train, "write_metrics", write_then_stop)
    with pytest.raises(Stop):
        train.run(profile)
    monkeypatch.setattr(train, "write_metrics", real_write)
    out_b = train.run_dir(profile)
    assert _state(out_b / "last.pt")["epoch"] == 1 and not (out_b / "metrics.csv").exists()
    # stop 2: in the middle of epoch 3 (steps of 8 out of 40 images: 5 steps an epoch)
    real_step, calls = loop.optimizer_step, []

    def step_then_stop(*args, **kwargs):
        calls.append(1)
        if len(calls) == 8:
            raise Stop
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop, "optimizer_step", step_then_stop)
    with pytest.raises(Stop):
        train.run(profile)
    monkeypatch.setattr(loop, "optimizer_step", real_step)
    assert _state(out_b / "last.pt")["epoch"] == 2
    capsys.readouterr()
    resumed = train.run(profile)
    assert "resuming after epoch 2" in capsys.readouterr().out

    _assert_same_run(resumed, straight, out_b, out_a)
    config = json.loads((out_b / "config.json").read_text())
    assert [x["from_epoch"] for x in config["launches"]] == [0, 1, 2]

    # finished: a new start says so and trains nothing
    real_epoch = train.train_epoch
    monkeypatch.setattr(train, "train_epoch", lambda *a: pytest.fail("a finished run trained"))
    again = train.run(profile)
    assert "is finished: all 3 epochs done" in capsys.readouterr().out
    pd.testing.assert_frame_equal(again[EXACT], straight[EXACT], check_exact=False, rtol=1e-9)
    # other settings are refused, a longer run is allowed to go on
    with pytest.raises(train.TrainError, match="train_lr: 0.001 there, 0.01 now"):
        train.run(get_profile("smoke", dict(RUN, train_lr=0.01)))
    monkeypatch.setattr(train, "train_epoch", real_epoch)
    assert list(train.run(get_profile("smoke", dict(RUN, train_epochs=4))).epoch) == [1, 2, 3, 4]


def test_a_run_stopped_in_mid_epoch_resumes_on_the_same_batches(study, monkeypatch, capsys):
    import signal

    from helpers.classify import preemption

    profile = get_profile("smoke", RUN)  # 5 optimizer steps an epoch
    _use_results(monkeypatch, study / "straight")
    straight = train.run(profile)
    out_a = train.run_dir(profile)

    # SIGTERM after step 3 of epoch 2: it saves there and stops
    _use_results(monkeypatch, study / "sigterm")
    real_step, calls = loop.optimizer_step, []

    def step_then_sigterm(*args, **kwargs):
        real_step(*args, **kwargs)
        calls.append(1)
        if len(calls) == 8:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(loop, "optimizer_step", step_then_sigterm)
    with pytest.raises(preemption.Preempted, match="SIGTERM in epoch 2 after step 3"):
        train.run(profile)
    out_b = train.run_dir(profile)
    state = _state(out_b / "last.pt")
    assert state["epoch"] == 1 and state["step_in_epoch"] == 3 and state["partial"][2] == 24  # 3 steps x 8 images
    assert signal.getsignal(signal.SIGTERM) is not preemption.SaveClock._on_sigterm  # handler given back

    # saves every step (train_checkpoint_minutes tiny), then a kill without warning inside step 4 of
    # epoch 3: it resumes after step 3, from the save
    calls.clear()

    def step_then_kill(*args, **kwargs):
        calls.append(1)
        if len(calls) == 6:  # the resumed epoch 2 has 2 steps left, then epoch 3: steps 1, 2, 3, then 4
            raise Stop
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop, "optimizer_step", step_then_kill)
    with pytest.raises(Stop):
        train.run(get_profile("smoke", dict(RUN, train_checkpoint_minutes=1e-9)))
    monkeypatch.setattr(loop, "optimizer_step", real_step)
    state = _state(out_b / "last.pt")
    assert state["epoch"] == 2 and state["step_in_epoch"] == 3
    capsys.readouterr()
    resumed = train.run(profile)
    assert "resuming after epoch 2, in epoch 3 after step 3" in capsys.readouterr().out
    _assert_same_run(resumed, straight, out_b, out_a)


def test_the_sampler_skips_what_a_save_in_mid_epoch_trained():
    from helpers.classify.loaders import ResumableSampler

    sampler = ResumableSampler(list(range(20)), num_replicas=2, rank=1, shuffle=True, seed=3)
    sampler.set_epoch(4)
    whole = list(sampler)
    sampler.skip = 4
    assert list(sampler) == whole[4:] and len(sampler) == len(whole) - 4


def test_early_stopping_stops_after_patience_epochs_without_improvement(study, monkeypatch, capsys):
    losses = iter([0.9, 0.7, 0.8, 0.75, 0.6, 0.5])  # best at 2, then 2 worse epochs: stop after 4
    monkeypatch.setattr(train, "validate", lambda tr: (next(losses), 0.5))
    profile = get_profile("smoke", {"train_epochs": 10, "train_patience": 2})
    metrics = train.run(profile)
    assert list(metrics.epoch) == [1, 2, 3, 4] and list(metrics.val_loss) == [0.9, 0.7, 0.8, 0.75]
    out = train.run_dir(profile)
    assert _state(out / "best.pt")["epoch"] == 2 and _state(out / "best.pt")["val_loss"] == 0.7
    last = _state(out / "last.pt")
    assert last["epoch"] == 4 and last["epochs_without_improvement"] == 2
    capsys.readouterr()
    assert len(train.run(profile)) == 4
    assert "early stopping after epoch 4" in capsys.readouterr().out
    assert list(pd.read_csv(out / "metrics.csv").epoch) == [1, 2, 3, 4]


def test_a_finished_run_may_drop_its_optimizer_state_and_then_cannot_go_on(study, monkeypatch, capsys):
    _use_results(monkeypatch, study / "slim")
    slim = {"train_epochs": 2, "train_patience": 5, "train_keep_finished_optimizer": 0}
    first = train.run(get_profile("smoke", slim))
    out = train.run_dir(get_profile("smoke", slim))
    last = _state(out / "last.pt")
    assert last["epoch"] == 2 and last["optimizer"] is None and last["model"]
    capsys.readouterr()
    pd.testing.assert_frame_equal(train.run(get_profile("smoke", slim)), first)
    assert "is finished: all 2 epochs done" in capsys.readouterr().out
    with pytest.raises(train.TrainError, match=r"kept no optimizer state .* delete .* to train it afresh"):
        train.run(get_profile("smoke", dict(slim, train_epochs=3)))


def test_a_disk_too_small_for_the_checkpoints_stops_before_the_first_epoch(study, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(checkpointing.shutil, "disk_usage", lambda path: usage(10**9, 10**9, 1000))
    monkeypatch.setattr(train, "train_epoch", lambda *a: pytest.fail("trained with no room to save"))
    profile = get_profile("smoke", {"train_epochs": 1})
    with pytest.raises(train.TrainError, match=r"GB free and this run's checkpoints need about .* "
                                               r"BOOK_RESULTS_ROOT"):
        train.run(profile)
    assert not (train.run_dir(profile) / "last.pt").exists()
    monkeypatch.setattr(checkpointing.shutil, "disk_usage", shutil.disk_usage)


def test_the_control_trains_in_its_own_run(study):
    profile = get_profile("smoke", {"train_epochs": 1})
    metrics = train.run(profile, control=True)
    out = train.run_dir(profile, control=True)
    assert out.name == "control" and len(metrics) == 1
    config = json.loads((out / "config.json").read_text())
    frame = mf.load("smoke")
    assert config["run"] == "control" and config["settings"]["control"] is True
    assert config["settings"]["train_images"] == len(augment.training_set(frame, profile, control=True))
    assert not (train.run_dir(profile) / "metrics.csv").exists()


def _env(study: Path) -> dict:
    env = dict(os.environ, BOOK_DATA_ROOT=os.environ["BOOK_DATA_ROOT"], BOOK_RESULTS_ROOT=str(study / "two"),
               PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    for var in ("BOOK_PROFILE", "WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    return env


@pytest.mark.slow
def test_two_processes_under_torchrun_train_like_one(study, monkeypatch):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "helpers", "train", "--profile", "smoke", "--set", "train_epochs=2"]
    done = subprocess.run(cmd, check=False, env=_env(study), cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 process(es) on cpu, global batch 8 = 4 x 2 x 1 micro-steps" in done.stdout
    assert "images/s" in done.stdout
    two = pd.read_csv(study / "two" / "smoke" / "train" / "paper" / "metrics.csv")
    assert list(two.epoch) == [1, 2]
    config = json.loads((study / "two" / "smoke" / "train" / "paper" / "config.json").read_text())
    assert config["world_size"] == 2
    # the same global batches (40 images, 8 a step) as one process with 2 micro-steps
    _use_results(monkeypatch, study / "one")
    one = train.run(get_profile("smoke", {"train_epochs": 2}))
    pd.testing.assert_frame_equal(two[EXACT], one[EXACT], check_exact=False, rtol=1e-3, atol=1e-4)


# last: by now its process, started with the module, has (nearly) finished
@pytest.mark.slow
def test_convnext_xl_at_384_with_the_paper_head_steps_on_cpu(convnext_xl_job):
    """One forward and backward pass of the full model, batch 1 (run beside the other tests)."""
    out, err = convnext_xl_job.communicate(timeout=300)
    assert convnext_xl_job.returncode == 0, err[-3000:]
    r = json.loads(out.strip().splitlines()[-1])
    print(f"ConvNeXt-XL on one CPU thread: {r['params'] / 1e6:.1f} M parameters, built in "
          f"{r['build_s']:.1f} s, forward+backward {r['step_s']:.1f} s, peak memory {r['max_rss_gb']:.1f} GB")
    assert 340e6 < r["params"] < 360e6 and r["fc"] == [2048, 2]
    assert r["logits"] == [1, 2] and 0 < r["prob"] < 1
    assert r["stem_grad"] > 0 and r["fc_grad"] > 0
    assert r["max_rss_gb"] < 8  # about 5 GB; the times are printed, not tested (shared machines vary)
