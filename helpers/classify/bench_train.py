"""Chapter 4: ``python -m helpers bench train``, the training step's speed, each option measured both ways.

The step timed is the loop's own (:func:`helpers.classify.loop.accumulate` and
:func:`~helpers.classify.loop.optimizer_step`), on random images of the profile's input side and
a model of the profile's architecture with random weights (speed does not depend on the weights).
What a GPU run needs to know, each measured rather than assumed: bf16 autocast, channels_last,
``torch.compile``, a fused Adam, the micro-batch (the paper's 4 and the largest that fits), and
whether the step ever waits for the host (it must not).
"""

from __future__ import annotations

import dataclasses
import inspect
import time
import traceback
from dataclasses import dataclass

import torch

from . import loop, models
from .bench_timing import device_name, free_memory, is_out_of_memory, mfu, report, timed
from .loop import accumulate, optimizer_step
from .models import build_model, count_flops

PAPER_MICRO_BATCH = 4  # the paper's global batch of 4 (two GPUs x 2); the faithful setting
BATCH_LADDER = (4, 8, 16, 32, 64, 128, 256)  # micro-batches tried on a GPU, until one does not fit
# The functions a training step runs through, read for host synchronisations.
STEP_PATH = (loop.accumulate, loop._on_device, loop._totals, loop.optimizer_step, loop.train_step,
             models.loss_and_prob)
HOST_SYNCS = (".item(", ".tolist(", ".cpu(", ".numpy(")


@dataclass(frozen=True)
class TrainOptions:
    """One way of running the step. On a CPU, bf16 and channels_last do nothing (the loop runs
    float32 there); fused Adam follows :func:`helpers.classify.prepare.setup` (CUDA only)."""

    micro_batch: int
    bf16: bool = True
    channels_last: bool = True
    compile: bool = False
    fused_adam: bool = True

    def label(self) -> str:
        flags = [("bf16" if self.bf16 else "fp32"), ("channels_last" if self.channels_last else "contiguous"),
                 ("compiled" if self.compile else "eager"), ("fused Adam" if self.fused_adam else "Adam")]
        return f"micro-batch {self.micro_batch}, " + ", ".join(flags)


def base_options(batch: int, device: torch.device) -> TrainOptions:
    """The fastest way the loop can run on ``device``: every GPU option on, none on a CPU."""
    gpu = device.type == "cuda"
    return TrainOptions(batch, bf16=gpu, channels_last=gpu, fused_adam=gpu)


def _build(profile, device: torch.device, opts: TrainOptions):
    with torch.device(device):  # initialised on the device: ConvNeXt-XL's 350 M weights in seconds
        model = build_model(profile, pretrained="none")
    model = model.to(device)
    if opts.channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    if profile.train_grad_checkpointing:
        model.set_grad_checkpointing(True)
    if opts.compile:
        model.compile()
    optimizer = torch.optim.Adam(model.parameters(), lr=profile.train_lr,
                                 fused=opts.fused_adam and device.type == "cuda")
    return model, optimizer


def _step_fn(profile, device: torch.device, model, optimizer, opts: TrainOptions):
    """One optimizer step of the loop on a fixed random batch."""
    side = profile.train_img_size
    x = torch.randn(opts.micro_batch, 3, side, side, device=device)
    y = torch.randint(0, 2, (opts.micro_batch,), device=device)
    amp = torch.bfloat16 if opts.bf16 and device.type == "cuda" else None
    cl = opts.channels_last and device.type == "cuda"

    def step():
        accumulate(model, [(x, y)], profile.train_head, device, amp_dtype=amp, channels_last=cl)
        optimizer_step(optimizer)
    return step


def time_options(profile, device: torch.device, opts: TrainOptions, steps: int, flops: float | None) -> dict:
    """Images/s (and MFU on a known GPU) of the step run ``opts``'s way; ``error`` when it does
    not fit in memory."""
    row = dataclasses.asdict(opts) | {"label": opts.label()}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        model, optimizer = _build(profile, device, opts)
        step = _step_fn(profile, device, model, optimizer, opts)
        seconds = timed(step, device, repeats=steps, warmup=3 if opts.compile else 2)
    except Exception as exc:  # noqa: BLE001 -- out of memory, or a compiler failure: a figure, not a crash
        if not (is_out_of_memory(exc) or opts.compile):
            raise
        free_memory(device)
        return row | {"error": "out of memory" if is_out_of_memory(exc) else f"compile failed: {exc}"[:300]}
    del model, optimizer, step
    free_memory(device)
    row["images_per_s"] = round(opts.micro_batch / seconds, 3)
    if device.type == "cuda":
        row["peak_memory_gb"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    row["mfu"] = mfu(flops, row["images_per_s"], device_name(device)) if flops else None
    print(f"bench train: {opts.label()}: {row['images_per_s']:.2f} images/s"
          + (f", MFU {row['mfu']:.1%}" if row["mfu"] else ""), flush=True)
    return row


def host_syncs_in_source() -> list[str]:
    """``module.function: call`` for each host synchronisation written in the step's code."""
    found = []
    for fn in STEP_PATH:
        source = inspect.getsource(fn)
        found += [f"{fn.__module__}.{fn.__name__}: {call}" for call in HOST_SYNCS if call in source]
    return found


def _where(exc: BaseException) -> str:
    """The last line of the book's own code in ``exc``'s traceback (where the step synchronised)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/helpers/" in f.filename.replace("\\", "/")]
    frame = frames[-1] if frames else traceback.extract_tb(exc.__traceback__)[-1]
    return f"{frame.filename.rsplit('/helpers/', 1)[-1]}:{frame.lineno} ({frame.line})"


def host_sync_check(profile, device: torch.device, opts: TrainOptions) -> dict:
    """No host sync in the step: the source has none, and on a GPU one step runs under CUDA's
    sync debug mode set to ``error`` (any synchronising call raises)."""
    result = {"in_source": host_syncs_in_source()}
    if device.type != "cuda":
        result["runtime"] = "not checked (CUDA's sync debug mode needs a GPU)"
        return result
    model, optimizer = _build(profile, device, dataclasses.replace(opts, compile=False))
    step = _step_fn(profile, device, model, optimizer, opts)
    step()
    torch.cuda.synchronize(device)
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
        result["runtime"] = "no synchronisation in one step"
    except RuntimeError as exc:
        result["runtime"] = f"synchronised at {_where(exc)}: {str(exc).splitlines()[0]}"
    finally:
        torch.cuda.set_sync_debug_mode(0)
    del model, optimizer, step
    free_memory(device)
    return result


def top_kernels(profile, device: torch.device, opts: TrainOptions, n: int = 8) -> list[dict]:
    """The profiler's evidence on a GPU: the ``n`` operations of most device time over three
    eager steps, each with its share of the steps' device time."""
    if device.type != "cuda":
        return []
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    model, optimizer = _build(profile, device, dataclasses.replace(opts, compile=False))
    step = _step_fn(profile, device, model, optimizer, opts)
    step()
    torch.cuda.synchronize(device)
    with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            step()
        torch.cuda.synchronize(device)
    events = [(e.key, getattr(e, "self_device_time_total", 0.0)) for e in prof.key_averages()]
    total = sum(t for _, t in events) or 1.0
    del model, optimizer, step
    free_memory(device)
    return [dict(name=name[:80], share=round(t / total, 4)) for name, t in sorted(events, key=lambda e: -e[1])[:n]]


def batch_sweep(profile, device: torch.device, steps: int, flops: float | None, deadline: float) -> list[dict]:
    """The paper's micro-batch and larger ones: on a GPU doubling until one does not fit, the
    time is up, or images/s stops growing by 3%; on a CPU the paper's and the profile's."""
    if device.type != "cuda":
        return [time_options(profile, device, base_options(b, device), steps, flops)
                for b in sorted({PAPER_MICRO_BATCH, profile.train_micro_batch})]
    rows: list[dict] = []
    for batch in BATCH_LADDER:
        row = time_options(profile, device, base_options(batch, device), steps, flops)
        rows.append(row)
        grew = len(rows) < 2 or "images_per_s" not in rows[-2] or \
            row.get("images_per_s", 0) > 1.03 * rows[-2]["images_per_s"]
        if "error" in row or not grew or time.monotonic() > deadline:
            break
    return rows


def best_row(rows: list[dict]) -> dict:
    good = [r for r in rows if "images_per_s" in r]
    if not good:
        raise RuntimeError("bench train: not even the smallest micro-batch fits in memory")
    return max(good, key=lambda r: r["images_per_s"])


def bench_train(profile, device: torch.device, *, steps: int = 5, compile: bool = False,
                deadline: float = float("inf")) -> dict:
    """The micro-batch sweep, then each option turned off (or compile on) at the fastest batch."""
    model = build_model(profile, pretrained="none").to(device)
    flops = 3 * count_flops(model, profile.train_img_size, device)  # forward + backward ~ 3 forwards
    params = round(sum(p.numel() for p in model.parameters()) / 1e6, 1)
    del model
    sweep = batch_sweep(profile, device, steps, flops, deadline)
    best = base_options(best_row(sweep)["micro_batch"], device)
    # bf16, channels_last and fused Adam are GPU options: on a CPU the loop runs none of them
    variants = [dataclasses.replace(best, fused_adam=False), dataclasses.replace(best, channels_last=False),
                dataclasses.replace(best, bf16=False)] if device.type == "cuda" else []
    if compile:
        variants.append(dataclasses.replace(best, compile=True))  # last: compiling takes the longest
    rows = []
    for opts in variants:
        if time.monotonic() > deadline:
            rows.append(dataclasses.asdict(opts) | {"label": opts.label(), "error": "skipped: time budget spent"})
            continue
        rows.append(time_options(profile, device, opts, steps, flops))
    fastest = best_row(sweep + rows)
    name = device_name(device)
    result = report(f"train ({profile.train_model}, {profile.train_img_size}px, {fastest['label']})",
                    fastest["micro_batch"] * steps, fastest["micro_batch"] * steps / fastest["images_per_s"], name)
    paper = next((r for r in sweep if r["micro_batch"] == PAPER_MICRO_BATCH), {})
    return result | dict(model=profile.train_model, img_size=profile.train_img_size, flops_per_image=flops,
                         params_millions=params, mfu=fastest.get("mfu"), best=fastest, sweep=sweep, variants=rows,
                         paper_batch_images_per_s=paper.get("images_per_s"),
                         compile_measured=compile, host_sync=host_sync_check(profile, device, best),
                         top_kernels=top_kernels(profile, device, best))
