"""Every chapter: ``python -m helpers bench {data,generate,train,score,all}``, the throughput of a step's work.

A benchmark prints what it measured; nothing here is a timed test. The data work is here (the
data step on one core, and the training's data path with its workers); the training step, the
generation and the scores have their own modules (:mod:`.bench_train`, :mod:`.bench_generate`,
:mod:`.bench_score`), and ``bench all`` (:mod:`.gpu_bench`) runs them all at full size for
``make gpu-bench``.
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
from ..core.profiles import add_profile_arguments
from ..data.images import convert_file, load_rgb, preprocess
from ..data.real_data import ensure_captions
from .bench_generate import bench_generate
from .bench_score import bench_score, random_images
from .bench_timing import device_name, report, synchronize, timed
from .bench_train import bench_train
from .models import build_model
from .transform import ModelInput, model_input


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
    result = report("data step (decode+check+resize+encode)", n, step, cpu)
    result["augment_images_per_s"] = round(n / aug, 3)
    result["baseline_images_per_s"] = round(n / base, 3)
    print(f"bench data: decode+augment+tensor at {profile.image_size}: {n / aug:.2f} images/s; "
          f"baseline PIL+torchvision decode+resize+tensor: {n / base:.2f} images/s (same run, 1 core)")
    return result




class _Files(torch.utils.data.Dataset):
    """Decode and the model's input transform, as the training set's items are made."""

    def __init__(self, paths: list[Path], transform: ModelInput):
        self.paths, self.transform = paths, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(load_rgb(self.paths[i]))


def _write_jpegs(folder: Path, n: int, side: int) -> list[Path]:
    """``n`` paths to JPEGs of random pixels (at most 64 distinct files, cycled). Noise is the
    worst case of JPEG decoding (nothing compresses), so the rates are lower bounds."""
    distinct = []
    for i, img in enumerate(random_images(min(n, 64), side)):
        distinct.append(folder / f"{i}.jpg")
        img.save(distinct[-1], quality=95)
    return (distinct * (n // len(distinct) + 1))[:n]


def loader_rate(dataset, batch: int, workers: int, pin: bool, device: torch.device) -> float:
    """Images/s of a DataLoader (prefetch 4 per worker) delivering to ``device``, counted from
    its first batch on (so that starting the workers, done once per run, is left out)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, num_workers=workers, pin_memory=pin,
                                         prefetch_factor=4 if workers else None)
    start, n = None, 0
    for x in loader:
        x = x.to(device, non_blocking=True)
        if start is None:
            synchronize(device)
            start = time.perf_counter()
        else:
            n += len(x)
    synchronize(device)
    return n / (time.perf_counter() - start)


def gpu_decode_rate(paths: list[Path], side: int, device: torch.device, batch: int = 64) -> float:
    """Images/s of ``torchvision.io.decode_jpeg`` on the GPU (nvJPEG), batch by batch, the file
    bytes read on the host."""
    from torchvision.io import decode_jpeg, read_file

    data = [read_file(str(p)) for p in paths]

    def run():
        for start in range(0, len(data), batch):
            images = decode_jpeg(data[start:start + batch], device=device)
            torch.stack([TF.resize(im, [side, side], antialias=True) for im in images]).float().div_(255)
    run()
    synchronize(device)
    start = time.perf_counter()
    run()
    synchronize(device)
    return len(data) / (time.perf_counter() - start)


def bench_loader(profile, device: torch.device, workers: list[int], n_images: int, batch: int) -> dict:
    """The training's data path apart from the model: JPEG decode and the model's input transform
    at ``train_img_size`` with each number of ``workers`` (pinned memory on a GPU, and at the
    most workers also without), and on a GPU nvJPEG decoding."""
    transform = model_input(build_model(profile, pretrained="none"), profile.train_img_size)
    pin = device.type == "cuda"
    with tempfile.TemporaryDirectory(prefix="bench-loader-") as tmp:
        paths = _write_jpegs(Path(tmp), n_images, profile.image_size)
        dataset = _Files(paths, transform)
        rows = [dict(workers=w, pinned=pin, images_per_s=round(loader_rate(dataset, batch, w, pin, device), 1))
                for w in workers]
        if pin:
            rows.append(dict(workers=workers[-1], pinned=False,
                             images_per_s=round(loader_rate(dataset, batch, workers[-1], False, device), 1)))
        gpu = round(gpu_decode_rate(paths, profile.train_img_size, device), 1) if device.type == "cuda" else None
    for row in rows:
        print(f"bench loader: {row['workers']} workers, pinned {row['pinned']}: {row['images_per_s']:.1f} images/s",
              flush=True)
    return dict(what=f"data path (decode + input transform, {profile.image_size}px JPEG to {profile.train_img_size}px)",
                device=device_name(device), cpu_cores=os.cpu_count(), batch=batch, rows=rows,
                images_per_s=max(r["images_per_s"] for r in rows), gpu_decode_images_per_s=gpu,
                note="random-pixel JPEGs (the slowest to decode): lower bounds")


def bench_predict(profile, device: torch.device, n_images: int, batch: int) -> dict:
    """Prediction's images/s two ways at ``batch``: the book's :func:`predict_images` on JPEG files
    (decode in threads, then the model under bf16 autocast), and the model alone on tensors already
    on the device. The first near the second means prediction is bound by the model (the GPU)."""
    from .prediction import forward_batch, predict_images

    model = build_model(profile, pretrained="none").to(device).eval()
    side, head = profile.train_img_size, profile.train_head
    x = [torch.randn(3, side, side, device=device) for _ in range(batch)]
    with torch.inference_mode():
        model_only = batch / timed(lambda: forward_batch(model, x, head, device), device, repeats=3)
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        paths = _write_jpegs(Path(tmp), n_images, profile.image_size)
        predict_images(model, paths[:batch], side, head, device, batch)  # warm-up
        start = time.perf_counter()
        predict_images(model, paths, side, head, device, batch)
        files = n_images / (time.perf_counter() - start)
    del model
    row = dict(what=f"prediction ({profile.train_model}, {side}px, batch {batch})", device=device_name(device),
               batch=batch, images_per_s=round(files, 2), model_only_images_per_s=round(model_only, 2),
               bound="model" if files >= 0.8 * model_only else "decoding (host)")
    print(f"bench predict: {row['images_per_s']:.1f} images/s from files, {row['model_only_images_per_s']:.1f} "
          f"model alone: bound by the {row['bound']}", flush=True)
    return row


def add_parser(sub) -> None:
    """``python -m helpers bench``'s arguments."""
    p = sub.add_parser("bench", help="throughput of a step: images/s (and s/image, MFU on a GPU); "
                       "all: every figure at full size into results/bench/<device>.json (make gpu-bench)")
    p.add_argument("what", choices=["data", "generate", "train", "score", "predict", "all"])
    add_profile_arguments(p)
    p.add_argument("--images", type=int, default=None, help="how many images to time")
    p.add_argument("--compile", action="store_true", help="train, generate, all: also measure torch.compile")
    p.add_argument("--small", action="store_true",
                   help="all: tiny stand-ins at small sizes, minutes (always so on a CPU); the profile is not used")
    p.add_argument("--out", default=None, help="all: the folder of the JSON (default: results/bench)")
    p.add_argument("--model", default=None, help="bench train: a timm model name (default: the profile's)")
    p.add_argument("--img-size", type=int, default=None, help="bench train: input side (default: the profile's)")


def result_path(profile, what: str) -> Path:
    return results_root(profile.name) / f"bench_{what}.json"


def summary(result: dict) -> dict:
    """The one-line figures of a result (what a chapter's table shows); the rest is in the details file."""
    return {k: v for k, v in result.items() if isinstance(v, (str, int, float, bool)) or v is None}


def measure(what: str, profile, n_images: int | None = None, compile: bool = False) -> dict:
    """One benchmark of the profile, on this process's device."""
    device = distributed.init().device
    if what == "data":
        return bench_data(profile, n_images)
    if what == "train":
        steps = max(1, (n_images or 4 * profile.train_micro_batch) // profile.train_micro_batch)
        return bench_train(profile, device, steps=steps, compile=compile or bool(profile.train_compile))
    if what == "generate":
        return bench_generate(profile, device, compile=compile, rounds=max(1, (n_images or 1) // profile.sd_batch))
    if what == "score":
        return bench_score(profile, device, n_images=n_images or 16)
    if what == "predict":
        return bench_predict(profile, device, n_images or 64, 16)  # the evaluation's default batch
    raise ValueError(f"bench has no {what!r}; valid: data, generate, train, score, predict (and all)")


def run(what: str, profile, n_images: int | None = None, compile: bool = False) -> dict:
    """Measure, print, and keep the figures in ``results/<profile>/bench_<what>.json`` (every
    measurement in ``bench_<what>_details.json``)."""
    result = measure(what, profile, n_images, compile)
    atomic_write_text(result_path(profile, what), json.dumps(summary(result), indent=2))
    atomic_write_text(result_path(profile, f"{what}_details"), json.dumps(result, indent=2))
    return result
