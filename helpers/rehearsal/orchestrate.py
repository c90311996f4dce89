"""Every chapter, rehearsed: ``make rehearse PROFILE=course|paper [FULL_SIZE=1]``, the real profile end to end, offline.

No machine of this project reaches COCO or the model hub, so the only proof that the ``course`` and
``paper`` paths work is a rehearsal: every external asset is replaced, *at its real address*, by a
stand-in of the same architecture and file layout, and the real profile runs through unchanged code.

- COCO: a look-alike served on 127.0.0.1 (:mod:`.coco_mirror`, :mod:`.coco_server`, with missing, truncated, greyscale
  and CMYK files), reached through ``BOOK_COCO_URL`` like any mirror;
- the model hub: a Hugging Face cache under the real hub ids, with ``HF_HUB_OFFLINE=1`` (:mod:`.hub`);
- torch-hub: the inpainting checkpoints (:mod:`.checkpoints`), pytorch-fid's Inception, and
  LPIPS's AlexNet and linear layers;
- smaller counts through ``BOOK_SET`` (:data:`COUNTS`, :data:`CPU_SIZES`, :data:`CPU_TRAININGS`), printed by every chapter. On a CPU the
  input sides shrink too (ConvNeXt-XL at 384 does not train in minutes on two cores): said in the
  output and in ``rehearsal.json``. ``FULL_SIZE=1`` (a GPU box) keeps every size real.

Then ``make run`` (``paper``) and the book build with warnings as errors, into
``_build/rehearse-<profile>``; it fails on any error. Each step's and chapter's time goes to
``rehearsal.json`` (results root and ``book/measured/``, which the page *Running the book* shows).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..core import steps
from ..core.files import atomic_write_text
from ..core.paths import REPO_ROOT, shown
from ..core.profiles import get_profile
from .coco_mirror import build_coco_mirror
from .coco_server import serve
from .hub import build_hub_cache, hub_ids_for
from .timings import MEASURED

# Counts and, on a CPU, sizes of a rehearsal: enough images for every split, reserve and step.
COUNTS = dict(real_train=40, real_val=10, real_test=10, gen_train=30, gen_val=10, gen_test=10,
              augment_count=10, inpaint_count=4, train_epochs=2, train_patience=2)
# On a CPU: the classifiers' input sides and the samplers' steps (the generators are tiny stand-ins
# at the real output sizes; ConvNeXt-XL at 384 would take hours on two cores).
# Chapter 6's probe encoder: ViT-B-32 (openai) on a CPU, through the same open_clip code and hub
# layout as ViT-L-14, at a twentieth of its FLOPs (ViT-L-14 scored 20 test images per
# degradation level in 27 s on two cores, 8.5 minutes a curve).
CPU_SIZES = dict(train_img_size=64, sd_steps=4, train_workers=0, ablation_variant_size=0, probe_model="ViT-B-32")
# On a CPU, also fewer trainings where each is slow (ConvNeXt-XL: about 6 min on two cores). The code
# of every choice still runs: course chooses Table 3's learning rate from two and trains a second
# seed, and trains all of Chapter 4's controls (the same code on the same architectures); paper
# trains one learning rate, one seed and no control: a ConvNeXt-XL run needs 9.8 GB free while it
# trains (best.pt, last.pt with Adam's moments, its copy while saved), and the paper rehearsal
# stopped for want of disk on CI at Chapter 6's blur+JPEG run, so its finished runs also drop
# Adam's moments (train_keep_finished_optimizer=0: 2.8 GB less each for ConvNeXt-XL; nothing
# after reads them). smoke exercises the variant input size.
# paper's global batch of 4 (2 per process) makes ConvNeXt-XL's 350 M-weight Adam step the cost of
# its CPU runs: 8 (4 per process) halves the steps and keeps the path (DDP, the same micro-batch code).
CPU_TRAININGS = {
    "course": dict(ablation_lr_grid="1e-4,3e-4", ablation_seeds=2),
    "paper": dict(ablation_lr_grid="1e-4", ablation_seeds=1, controls="", train_batch=8, train_micro_batch=4,
                  train_keep_finished_optimizer=0),
}


class RehearsalError(RuntimeError):
    """A rehearsal that failed; the message says at which stage."""


def book_set(full_size: bool, profile_name: str = "course") -> str:
    sets = COUNTS | ({} if full_size else CPU_SIZES | CPU_TRAININGS.get(profile_name, {}))
    return " ".join(f"{k}={v}" for k, v in sets.items())


def scratch(profile_name: str, full_size: bool) -> Path:
    return REPO_ROOT / "_rehearsal" / (profile_name + ("-full" if full_size else ""))


def fresh_start(root: Path, out: Path) -> None:
    """Every rehearsal runs every step and chapter anew (the stand-ins are kept: they are inputs)."""
    for folder in (root / "data", root / "results", out):
        shutil.rmtree(folder, ignore_errors=True)


def prepare(profile, root: Path, full_size: bool) -> dict:
    """Build every stand-in at its real address under ``root`` (kept between rehearsals)."""
    from ..inpaint.inception import ensure_standin_inception_weights  # torch: loaded when a rehearsal starts
    from ..inpaint.lpips import ensure_standin_lpips_weights  # torch
    from .checkpoints import place_standin_checkpoints  # torch

    os.environ["TORCH_HOME"] = str(root / "torch-home")
    need_train = profile.real_train + profile.real_val + profile.gen_train + profile.gen_val
    mirror = build_coco_mirror(root / "coco-mirror", n_train=need_train * 2,
                               n_val=(profile.real_test + profile.gen_test) * 2, profile=profile)
    build_hub_cache(root / "hf-home", hub_ids_for(profile), full_size=full_size)
    place_standin_checkpoints()
    ensure_standin_inception_weights()
    ensure_standin_lpips_weights()
    return mirror


def mark_results(profile_name: str, root: Path, sets: str, full_size: bool) -> None:
    """Say in the rehearsal's results root that its results come from stand-ins (every chapter and
    the results page read it and label the numbers as pipeline checks)."""
    atomic_write_text(root / "results" / profile_name / steps.STANDINS,
                      json.dumps(dict(book_set=sets, full_size=full_size), indent=2))


def environment(profile_name: str, root: Path, coco_url: str, sets: str) -> dict:
    return os.environ | {
        "BOOK_PROFILE": profile_name, "BOOK_SET": sets, "BOOK_COCO_URL": coco_url,
        "BOOK_DATA_ROOT": str(root / "data"), "BOOK_RESULTS_ROOT": str(root / "results"),
        "HF_HOME": str(root / "hf-home"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1", "TORCH_HOME": str(root / "torch-home"),
        "DIFFUSERS_VERBOSITY": "error",  # not "Could not reach the Hub" on every offline load
    }


def timed(cmd: list[str], env: dict, what: str) -> float:
    print(f"\n== rehearsal: {what}\n$ {' '.join(map(shown, cmd))}", flush=True)
    started = time.perf_counter()
    if subprocess.run(cmd, env=env, cwd=REPO_ROOT).returncode != 0:
        raise RehearsalError(f"the rehearsal failed at: {what} (its output is above)")
    return time.perf_counter() - started


def build_dir(profile_name: str, full_size: bool) -> Path:
    return REPO_ROOT / "_build" / f"rehearse-{profile_name}{'-full' if full_size else ''}"


def chapter_times(out: Path) -> dict[str, float]:
    """Execution seconds of each page, from the build's execution cache."""
    from jupyter_cache import get_cache  # the book extra: only after a build

    cache = get_cache(out / "_build" / ".jupyter_cache")
    return {Path(r.uri).stem: round(r.data.get("execution_seconds", 0.0), 1)
            for r in cache.list_cache_records()}


def check_pages(out: Path, profile_name: str) -> list[str]:
    """Every rendered chapter names its profile; no page shows a traceback or this machine's paths."""
    problems = []
    for page in sorted((out / "_build" / "html" / "notebooks").glob("*.html")):
        text = page.read_text(encoding="utf-8")
        if page.stem[:2] in ("01", "02", "03", "04", "05") and f"profile '{profile_name}'" not in text:
            problems.append(f"{page.name} does not name the profile '{profile_name}'")
        if "Traceback (most recent call last)" in text:
            problems.append(f"{page.name} shows a traceback")
    return problems


def device_name() -> str:
    import torch  # only for the report, at the end of a rehearsal

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def write_report(profile, root: Path, env: dict, timings: dict, full_size: bool) -> Path:
    """``rehearsal.json``: device, settings, seconds per step and per chapter; in the rehearsal's
    results root and in ``book/measured/`` (read by the page *Running the book*)."""
    os.environ["BOOK_RESULTS_ROOT"] = env["BOOK_RESULTS_ROOT"]
    report = dict(profile=profile.name, full_size=full_size, device=device_name(),
                  book_set=env["BOOK_SET"], date=time.strftime("%Y-%m-%d"),
                  note=("stand-ins at the real sizes" if full_size else
                        "CPU rehearsal: tiny stand-in generators, real classifier architectures at "
                        "shrunken input sides (BOOK_SET); times are not a GPU box's"),
                  steps=[dict(command=r["command"], seconds=r.get("launcher_seconds", r["seconds"]),
                              processes=r.get("nproc", r.get("world_size", 1)))
                         for r in steps.all_records(profile)],
                  **timings)
    text = json.dumps(report, indent=2)
    atomic_write_text(Path(env["BOOK_RESULTS_ROOT"]) / profile.name / "rehearsal.json", text)
    name = f"rehearsal-{profile.name}{'-full' if full_size else ''}.json"
    atomic_write_text(MEASURED / name, text)
    return MEASURED / name


def release_checkpoints(root: Path) -> int:
    """Delete the rehearsal's trained checkpoints (random-weight stand-ins of real architectures:
    gigabytes that show nothing once the book is built); bytes freed. Their metrics, the reports and
    the book stay, and the stand-in inputs too (the next rehearsal reuses them)."""
    files = sorted((root / "results").rglob("*.pt"))
    freed = sum(f.stat().st_size for f in files)
    for f in files:
        f.unlink()
    return freed


def rehearse(profile_name: str, full_size: bool = False) -> Path:
    """The whole rehearsal of one profile; the path of its report."""
    root = scratch(profile_name, full_size)
    sets = book_set(full_size, profile_name)
    os.environ["BOOK_SET"] = sets
    profile = get_profile(profile_name)
    print(f"rehearsal of profile '{profile_name}' in {root.relative_to(REPO_ROOT)}\n"
          f"BOOK_SET={sets}" + ("" if full_size else "\n(CPU: input sides shrunk, see BOOK_SET)"), flush=True)
    started = time.perf_counter()
    fresh_start(root, build_dir(profile_name, full_size))
    prepare(profile, root, full_size)
    mark_results(profile_name, root, sets, full_size)
    base_url, stop = serve(root / "coco-mirror")
    try:
        env = environment(profile_name, root, base_url, sets)
        timings = dict(setup_seconds=round(time.perf_counter() - started, 1))
        if not profile.build_runs_steps:
            timings["run_seconds"] = round(timed([sys.executable, "-m", "helpers", "run", "--profile",
                                                   profile_name], env, "make run"), 1)
        out = build_dir(profile_name, full_size)
        timings["build_seconds"] = round(timed(
            [str(Path(sys.executable).parent / "jupyter-book"), "build", ".", "--path-output", str(out),
             "--warningiserror", "--keep-going"], env, "book build (warnings are errors)"), 1)
    finally:
        stop()
    problems = check_pages(out, profile_name)
    if problems:
        raise RehearsalError("the rendered book of the rehearsal has problems:\n  " + "\n  ".join(problems))
    timings["chapters"] = chapter_times(out)
    report = write_report(profile, root, env, timings, full_size)
    freed = release_checkpoints(root)
    print(f"\nrehearsal of '{profile_name}' passed in {(time.perf_counter() - started) / 60:.1f} min; "
          f"report: {report.relative_to(REPO_ROOT)}; book: {out.relative_to(REPO_ROOT)}/_build/html; "
          f"its trained checkpoints ({freed / 1e9:.1f} GB of random-weight stand-ins) were deleted")
    return report
