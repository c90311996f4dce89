"""Every chapter: ``python -m helpers bench {data,generate,train}``, the throughput of a step's work.

A benchmark prints what it measured; nothing here is a timed test.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from ..augment import algorithm1 as augment
from ..core import distributed
from ..core.files import atomic_write_text
from ..core.paths import coco_dir, results_root
from ..data.generate import generate_batch, load_pipeline
from ..data.images import convert_file, load_rgb, preprocess
from ..data.real_data import ensure_captions
from .models import build_model, count_flops, loss_and_prob


def _report(what: str, n: int, seconds: float, device: str) -> dict:
    result = dict(what=what, images=n, seconds=round(seconds, 3), images_per_s=round(n / seconds, 3),
                  s_per_image=round(seconds / n, 4), device=device, threads=torch.get_num_threads())
    print(f"bench {what}: {n} images in {seconds:.2f} s = {n / seconds:.2f} images/s "
          f"({seconds / n:.3f} s/image) on {device}")
    return result


def _time(fn, sources) -> float:
    start = time.perf_counter()
    for i, src in enumerate(sources):
        fn(i, src)
    return time.perf_counter() - start


def bench_data(profile, n_images: int | None = None) -> dict:
    """Per-core throughput of the data work, three ways, measured in the same run:

    - the data step: decode, check, anti-aliased resize, JPEG encode;
    - training input with augmentation: decode, Algorithm 1 (a drawn subset), resize, tensor;
    - a plain baseline: PIL decode and torchvision resize to tensor, nothing else.
    """
    root = ensure_captions(profile) if profile.real_source == "standin" else coco_dir(profile)
    sources = sorted(root.glob("*2017/*.jpg"))
    if not sources:
        raise RuntimeError(f"no photographs under {root}: run `python -m helpers data --profile "
                           f"{profile.name}` first")
    n = n_images or min(len(sources), 64)
    sources = (sources * (n // len(sources) + 1))[:n]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # per core
    try:
        with tempfile.TemporaryDirectory() as tmp:
            step = _time(lambda i, src: convert_file(src, Path(tmp) / f"{i}.jpg", profile), sources)

        def augmented(i, src):
            params = augment.draw(np.random.default_rng(i), profile.augment)
            img = augment.apply(load_rgb(src), params, i)
            TF.to_dtype(TF.to_image(preprocess(img, profile.image_size)), torch.float32, scale=True)

        def baseline(i, src):
            with Image.open(src) as img:
                x = TF.to_image(img.convert("RGB"))
            TF.to_dtype(TF.resize(x, [profile.image_size, profile.image_size], antialias=True),
                        torch.float32, scale=True)

        aug = _time(augmented, sources)
        base = _time(baseline, sources)
    finally:
        torch.set_num_threads(threads)
    cpu = f"cpu, 1 of {os.cpu_count()} cores"
    result = _report("data step (decode+check+resize+encode)", n, step, cpu)
    result["augment_images_per_s"] = round(n / aug, 3)
    result["baseline_images_per_s"] = round(n / base, 3)
    print(f"bench data: decode+augment+tensor at {profile.image_size}: {n / aug:.2f} images/s; "
          f"baseline PIL+torchvision decode+resize+tensor: {n / base:.2f} images/s (same run, 1 core)")
    return result


def bench_generate(profile, n_images: int | None = None) -> dict:
    """Images/s of the profile's pipeline at its resolution, steps and batch, after a warm-up."""
    world = distributed.init()
    pipe = load_pipeline(profile, world.device)
    batch = profile.sd_batch
    n = n_images or 2 * batch
    prompts = ["A photograph of a kitchen with a wooden table."] * batch
    generate_batch(pipe, profile, prompts[:1], [0])  # warm-up: kernels, caches
    sync = torch.cuda.synchronize if world.device.type == "cuda" else (lambda: None)
    sync()
    start, done = time.perf_counter(), 0
    while done < n:
        k = min(batch, n - done)
        generate_batch(pipe, profile, prompts[:k], list(range(done, done + k)))
        done += k
    sync()
    seconds = time.perf_counter() - start
    name = torch.cuda.get_device_name(world.device) if world.device.type == "cuda" else "cpu"
    return _report(f"generate ({profile.sd_model}, {profile.sd_resolution}px, {profile.sd_steps} steps, "
                   f"batch {batch}, {pipe.unet.dtype})", n, seconds, name)


# Dense bf16 peak of common GPUs (TFLOP/s, vendor figures without sparsity), for MFU.
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0,
                    "L4": 121.0, "T4": 65.0, "V100": 125.0, "RTX 2080 Ti": 54.0, "RTX 4090": 165.0}


def _peak_tflops(device_name: str) -> float | None:
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in device_name:
            return value
    return None


def bench_train(profile, n_images: int | None = None) -> dict:
    """Training throughput of the profile's model at its input size and micro batch: forward,
    backward and an Adam step, after warm-up; on a GPU also the model FLOP utilisation."""
    world = distributed.init()
    device = world.device
    model = build_model(profile, pretrained="none").to(device)
    if device.type == "cuda" and profile.train_channels_last:
        model = model.to(memory_format=torch.channels_last)
    if profile.train_grad_checkpointing:
        model.set_grad_checkpointing(True)
    opt = torch.optim.Adam(model.parameters(), lr=profile.train_lr)
    batch = profile.train_micro_batch
    x = torch.randn(batch, 3, profile.train_img_size, profile.train_img_size, device=device)
    y = torch.randint(0, 2, (batch,), device=device)
    use_bf16 = device.type == "cuda" and profile.train_precision == "bf16"
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss, _ = loss_and_prob(model(x), y, profile.train_head)
        loss.mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    sync()
    steps = max(1, (n_images or 4 * batch) // batch)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = time.perf_counter() - start
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    result = _report(f"train ({profile.train_model}, {profile.train_img_size}px, batch {batch})",
                     steps * batch, seconds, name)
    flops = 3 * count_flops(model, profile.train_img_size, device)  # forward + backward ~ 3 forwards
    result["flops_per_image"] = flops
    result["params_millions"] = round(sum(p.numel() for p in model.parameters()) / 1e6, 1)
    peak = _peak_tflops(name)
    if peak:
        result["mfu"] = round(flops * result["images_per_s"] / (peak * 1e12), 3)
        print(f"bench train: MFU {result['mfu']:.1%} of the {peak:.0f} TFLOP/s dense bf16 peak of {name}")
    return result


def result_path(profile, what: str) -> Path:
    return results_root(profile.name) / f"bench_{what}.json"


def run(what: str, profile, n_images: int | None = None) -> dict:
    """Measure, print, and keep the figures in ``results/<profile>/bench_<what>.json``."""
    result = {"data": bench_data, "generate": bench_generate, "train": bench_train}[what](profile, n_images)
    atomic_write_text(result_path(profile, what), json.dumps(result, indent=2))
    return result
