"""Every chapter: ``make gpu-bench`` (``python -m helpers bench all``), every speed of the study in one run, into ``results/bench/<device>.json``.

On a GPU it times the study's models at full size with random weights (speed does not depend on
the weights, and nothing is downloaded): ConvNeXt-XL at 384 (timm's architecture,
``pretrained=False``) and SD 2.0 at 768 px and 25 steps (the published UNet, VAE and text-encoder
configurations, :func:`helpers.rehearsal.hub.component_configs`, given by the command). Each
figure is written beside its target from issue 14, which names one H100: at least 55% MFU
(about 500 images/s) training, at most 0.5 s per generated image. With ``--small`` (and on a
CPU, always) the same code runs on smoke's tiny stand-ins at small sizes, in minutes: a check
that the script works, not a speed of the study's models.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from ..core import distributed
from ..core.files import atomic_write_text, slug
from ..core.paths import results_root
from ..core.profiles import get_profile
from .bench import bench_loader, bench_predict
from .bench_generate import bench_generate
from .bench_score import bench_score
from .bench_timing import device_name
from .bench_train import bench_train

XL = "convnext_xlarge.fb_in22k_ft_in1k_384"
# The targets (one H100): (figure key, comparison, value, what it is).
TARGETS = {
    "train_mfu": (">=", 0.55, "model FLOP utilisation, ConvNeXt-XL at 384, fastest micro-batch"),
    "train_images_per_s": (">=", 500.0, "training images/s, ConvNeXt-XL at 384, fastest micro-batch"),
    "generate_s_per_image": ("<=", 0.5, "s/image, SD 2.0 at 768 px and 25 steps, fastest batch"),
}


def bench_dir() -> Path:
    return results_root("bench")


def settings(small: bool):
    """(training profile, generation profile, score profile, loader workers, images timed)."""
    if small:
        smoke = get_profile("smoke")
        return smoke, smoke, get_profile("smoke", {"image_size": 192}), [0, 2], 16
    train = get_profile("paper", {"train_model": XL, "train_img_size": 384, "train_pretrained": "none"})
    generate = get_profile("paper", {"sd_resolution": 768, "sd_steps": 25, "sd_dtype": "float16"})
    workers = sorted({w for w in (4, 8, 16) if w <= (os.cpu_count() or 1)} or {1})
    return train, generate, train, workers, 768


def environment(device: torch.device, small: bool) -> dict:
    import diffusers
    import timm

    return dict(device=device_name(device), device_type=device.type,
                date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                small=small, torch=torch.__version__, cuda=torch.version.cuda,
                cudnn=torch.backends.cudnn.version() if device.type == "cuda" else None,
                diffusers=diffusers.__version__, timm=timm.__version__, python=platform.python_version(),
                cpu_cores=os.cpu_count())


def _met(key: str, value) -> bool | None:
    how, target, _ = TARGETS[key]
    if value is None:
        return None
    return value >= target if how == ">=" else value <= target


def figures(result: dict) -> list[dict]:
    """The headline figures, each with its target (where the issue sets one) and whether it is met.
    A small run's figures are of tiny stand-ins: no target applies to them."""
    train, gen, score, data = result["train"], result["generate"], result["score"], result["data_path"]
    model = f"{train.get('model', '?')} at {train.get('img_size', '?')} px"
    rows = [dict(key="train_images_per_s", value=train["images_per_s"], unit="images/s",
                 what=f"training images/s, {model}, fastest micro-batch"),
            dict(key="train_mfu", value=train.get("mfu"), unit="fraction of the bf16 peak",
                 what=f"model FLOP utilisation, {model}, fastest micro-batch"),
            dict(key="train_paper_batch_images_per_s", value=train.get("paper_batch_images_per_s"),
                 unit="images/s", what="training images/s at the paper's micro-batch of 4"),
            dict(key="generate_s_per_image", value=gen["s_per_image"], unit="s/image",
                 what=f"s/image, {gen.get('model', 'SD')} at {gen.get('resolution', '?')} px and "
                      f"{gen.get('steps', '?')} steps, fastest batch"),
            dict(key="generate_unet_share", value=gen["unet_share"], unit="fraction of generation time",
                 what="share of generation time in the UNet"),
            dict(key="data_path_images_per_s", value=data["images_per_s"], unit="images/s",
                 what=f"data path, decode + transform, best of {[r['workers'] for r in data['rows']]} workers")]
    pred = result["predict"]
    rows += [dict(key="predict_images_per_s", value=pred["images_per_s"], unit="images/s",
                  what=f"prediction from JPEG files, batch {pred['batch']} (model alone: "
                       f"{pred['model_only_images_per_s']:g}; bound by the {pred['bound']})")]
    rows += [dict(key=f"score_{name}_images_per_s", value=rate, unit="images/s", what=f"{name}, batched")
             for name, rate in score["images_per_s_by_metric"].items()]
    for row in rows:
        how, target, what = TARGETS.get(row["key"], (None, None, row.get("what", row["key"])))
        row["what"] = row.get("what", what)
        row["target"] = None if target is None else f"{how} {target:g}"
        row["met"] = None if target is None or result["small"] else _met(row["key"], row["value"])
    return rows


def limits(result: dict) -> list[str]:
    """What holds the training back where its target is not met: the data path, memory, or the
    kernels (with the profiler's top kernels as evidence)."""
    train, data = result["train"], result["data_path"]
    notes = []
    if data["images_per_s"] < train["images_per_s"]:
        notes.append(f"data path: the loader delivers {data['images_per_s']:.0f} images/s, training consumes "
                     f"{train['images_per_s']:.0f}: more workers or nvJPEG decoding "
                     f"({data.get('gpu_decode_images_per_s')} images/s measured)")
    if any(r.get("error") == "out of memory" for r in train["sweep"]):
        notes.append(f"memory: the micro-batch sweep stopped at out of memory after {train['best']['micro_batch']}")
    if train.get("top_kernels"):
        notes.append("kernels: most device time in " + "; ".join(
            f"{k['name']} {k['share']:.0%}" for k in train["top_kernels"][:5]))
    return notes


def measure(device: torch.device, small: bool, sd_configs: dict | None, compile: bool, budget_s: float,
            save=lambda result: None) -> dict:
    """Every figure in turn; ``save`` gets the result so far after each part, so that a run cut
    short (a lease ending, a compile that never returns) still leaves what it measured."""
    start = time.monotonic()
    train_p, gen_p, score_p, workers, n_loader = settings(small)
    result = environment(device, small) | {"budget_s": budget_s}
    print(f"bench all: {'small stand-ins' if small else 'full size'} on {result['device']}", flush=True)
    result["score"] = bench_score(score_p, device, n_images=8 if small else 64)
    save(result)
    result["train"] = bench_train(train_p, device, steps=2 if small else 5, compile=compile,
                                  deadline=start + 0.45 * budget_s)
    save(result)
    batch = result["train"]["best"]["micro_batch"]
    result["predict"] = bench_predict(train_p, device, 2 * batch if small else 4 * batch, batch)
    result["data_path"] = bench_loader(train_p, device, workers, n_loader, batch)
    save(result)
    result["generate"] = bench_generate(gen_p, device, sd_configs=None if small else sd_configs, compile=compile,
                                        deadline=start + 0.85 * budget_s)
    result["seconds"] = round(time.monotonic() - start, 1)
    result["figures"] = figures(result)
    result["limits"] = [] if small else limits(result)
    return result


def run(out: Path | None = None, small: bool | None = None, sd_configs: dict | None = None,
        compile: bool | None = None, budget_s: float | None = None) -> Path:
    """Measure everything and write ``<out>/<device slug>.json``; its path.

    ``small`` None: full size on a GPU, small on a CPU. ``compile`` None: measured on a full-size
    run only (compiling takes minutes on a CPU). A full-size run needs ``sd_configs``.
    """
    device = distributed.init().device
    small = device.type != "cuda" if small is None else small
    if not small and sd_configs is None:
        raise ValueError("a full-size bench needs SD 2.0's component configs (python -m helpers bench all "
                         "passes them): give sd_configs, or run with --small")
    compile = (not small) if compile is None else compile
    budget_s = budget_s or (240.0 if small else 420.0)
    folder, suffix = (Path(out) if out else bench_dir()), ("-small" if small and device.type == "cuda" else "")
    partial = folder / f"{slug(device_name(device))}{suffix}.partial.json"

    def save(result: dict) -> None:
        atomic_write_text(partial, json.dumps(result, indent=2) + "\n")
    result = measure(device, small, sd_configs, compile, budget_s, save)
    path = folder / f"{slug(result['device'])}{suffix}.json"
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    partial.unlink(missing_ok=True)
    print(f"bench all: {result['seconds']:.0f} s; figures in {path.parent.name}/{path.name}", file=sys.stderr)
    return path
