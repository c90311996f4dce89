"""What the notebooks call: set-up, running a step's command, and the chapter's tables and figures.

A notebook cell stays a few lines long; the work is here or in the commands.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from PIL import Image

from . import manifest as mf
from . import paper
from .paths import data_root, inside, results_root, shown
from .profiles import Profile, get_profile, to_sets
from . import steps
from .steps import made_from_standins


def setup(profile: str | None = None, overrides: dict | None = None) -> Profile:
    """The chapter's profile, printed, with a warning when its results are only pipeline checks."""
    p = get_profile(profile, overrides)
    print(p.describe())
    if p.name == "smoke":
        print("\nSMOKE PROFILE: stand-in photographs and tiny random models.\n"
              "Every number below checks that the pipeline runs; none is a finding\n"
              "about real or generated images.")
    elif made_from_standins(p.name):
        print(f"\nREHEARSAL of '{p.name}': the real code against stand-ins at the real addresses\n"
              "(random weights of the real architectures, a COCO look-alike, smaller counts).\n"
              "Every number below checks that the pipeline runs; none is a finding.")
    return p


class StepNotDone(RuntimeError):
    """A chapter built before its long step has finished (``paper``: steps run outside the build).

    IPython shows only the message (``_render_traceback_``): the rendered chapter says what is
    missing and which command makes it, instead of a traceback or a cell that runs for hours.
    """

    def _render_traceback_(self) -> list[str]:
        return str(self).splitlines()


def _launcher(nproc: int, torchrun: str = "torchrun", python: str = "python") -> list[str]:
    return [torchrun, "--standalone", f"--nproc_per_node={nproc}"] if nproc > 1 else [python]


def _argv(command: str, profile: Profile, overrides: dict | None, args) -> list[str]:
    return [command, *args, "--profile", profile.name, *to_sets(overrides)]


def command_line(command: str, profile: Profile, overrides: dict | None, args, nproc: int) -> list[str]:
    """The command as a user would type it (``torchrun ... -m helpers`` when ``nproc`` > 1), with
    paths shown relative to the book's roots."""
    return [*_launcher(nproc), "-m", "helpers", *map(shown, _argv(command, profile, overrides, args))]


def launch(command: str, profile: Profile, overrides: dict | None = None, *args: str, tail: int = 12,
           nproc: int = 1, stream: bool = False) -> str:
    """Run the step now; its stdout. ``stream``: show every line as it comes (``make run``), else
    the last ``tail`` lines at the end (a notebook cell). The step's record keeps those lines."""
    typed = command_line(command, profile, overrides, args, nproc)
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    cmd = [*_launcher(nproc, torchrun, sys.executable), "-m", "helpers", *_argv(command, profile, overrides, args)]
    print("$ " + " ".join(typed), flush=True)
    started = time.perf_counter()
    out = _run(cmd, stream)
    lines = [shown(ln) for ln in out.stdout.splitlines() if ln.strip()]
    if not stream:
        print("\n".join(lines[-tail:]))
    if out.returncode != 0:
        raise steps.StepFailed(f"`{' '.join(typed)}` failed:\n{shown(out.stderr or '')[-3000:]}")
    steps.add_output(profile, [command, *args], lines[-tail:], time.perf_counter() - started, nproc)
    return out.stdout


def _run(cmd: list[str], stream: bool) -> subprocess.CompletedProcess:
    if not stream:
        return subprocess.run(cmd, capture_output=True, text=True)
    lines = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1) as proc:
        for line in proc.stdout:  # stderr (progress bars, errors) goes straight to the terminal
            print(line, end="", flush=True)
            lines.append(line)
    return subprocess.CompletedProcess(cmd, proc.returncode, "".join(lines), "")


def run_step(command: str, profile: Profile, overrides: dict | None = None, *args: str,
             tail: int = 12, nproc: int = 1) -> str:
    """Run ``python -m helpers COMMAND --profile P [--set ...]``; show the end of its output.

    ``nproc`` > 1 launches it with ``torchrun --standalone --nproc_per_node=nproc`` (one process per
    GPU, or CPU processes with gloo). Each command skips work that is already done, so a rerun of
    the notebook is fast. A profile whose build does not run its steps (``build_runs_steps=0``:
    ``paper``, hours per step) shows the finished step's record instead, or says how to run it.
    """
    if profile.build_runs_steps:
        return launch(command, profile, overrides, *args, tail=tail, nproc=nproc)
    return show_finished(command, profile, overrides, *args, tail=tail, nproc=nproc)


def show_finished(command: str, profile: Profile, overrides: dict | None = None, *args: str,
                  tail: int = 12, nproc: int = 1) -> str:
    """What a build that renders from finished steps shows for one step (or :class:`StepNotDone`)."""
    typed = " ".join(command_line(command, profile, overrides, args, nproc))
    record = steps.finished(profile, [command, *args])
    if record is None:
        raise StepNotDone(
            f"This step has not finished for profile '{profile.name}' with these settings:\n"
            f"  $ {typed}\n"
            f"The '{profile.name}' profile runs its steps outside the book build (they take hours):\n"
            f"run `make run PROFILE={profile.name}` (every step in order, resumable) or the command "
            f"above, then build the book again.")
    lines = record.get("output", [])[-tail:]
    print(f"$ {typed}\n" + "\n".join(lines)
          + f"\n(finished {record['finished']} in {record['seconds']:.0f} s; not run again by the book build)")
    return "\n".join(lines)


def processes(profile: Profile, nproc: int | None = None) -> int:
    """The torchrun processes of the chapter's training (``nproc``, else one per GPU, else 2 CPU
    processes), printed with how the profile's global batch splits over them."""
    from .distributed import launch_processes
    from .train import batch_plan

    nproc = nproc or launch_processes()
    plan = batch_plan(profile, nproc)
    print(f"training runs on {nproc} process(es): global batch {plan.global_batch} = "
          f"{plan.micro_batch} images x {nproc} process(es) x {plan.accum} micro-step(s)")
    if plan.note:
        print(f"note: {plan.note}")
    return nproc


def prerequisites(profile: Profile, overrides: dict | None, *steps: str) -> None:
    """Run the earlier chapters' steps this chapter reads (each skips what is done, so this is
    quick after a first run), so that a chapter can be run, or built, on its own."""
    for step in steps:
        command, *args = step.split()
        run_step(command, profile, overrides, *args, tail=1)


def counts_with_paper(frame: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """Images per class and split: ours (this profile) next to the paper's (section 5.1)."""
    ours = mf.counts(mf.originals(frame))
    rows = []
    for label in ("real", "generated"):
        for split in mf.SPLITS:
            planned = (profile.real_counts if label == "real" else profile.gen_counts)[split]
            have = int(ours.loc[label, split]) if label in ours.index and split in ours.columns else 0
            rows.append({"class": label, "split": split, f"ours ({profile.name})": have,
                         "planned by the profile": planned, "the paper's": paper.COUNTS[label][split]})
    return pd.DataFrame(rows).set_index(["class", "split"])


def glue_figure(name: str, fig) -> None:
    """Hand ``fig`` to the book (a ``{glue:figure}`` with a caption shows it) and not twice."""
    from myst_nb import glue

    glue(name, fig, display=False)
    plt.close(fig)


def manifest_preview(frame: pd.DataFrame) -> pd.DataFrame:
    """The first real and the first generated row, with the columns a reader needs first."""
    cols = ["path", "label", "split", "source", "caption", "seed", "steps"]
    firsts = frame.groupby("label_name", sort=False).head(1)
    return firsts[cols].set_index("path")


def sample_grid(frame: pd.DataFrame, per_class: int = 4, split: str = "train", seed: int = 0):
    """A figure: ``per_class`` real images on the top row, generated ones below, with captions."""
    frame = mf.originals(frame)
    fig, axes = plt.subplots(2, per_class, figsize=(2.6 * per_class, 6.4))
    root = data_root()
    for row, label in enumerate(("real", "generated")):
        chosen = frame[(frame.label_name == label) & (frame.split == split)]
        chosen = chosen.sample(min(per_class, len(chosen)), random_state=seed)
        for col in range(per_class):
            ax = axes[row, col]
            ax.axis("off")
            if col < len(chosen):
                item = chosen.iloc[col]
                ax.imshow(Image.open(inside(root, item.path)))
                caption = str(item.caption)
                ax.set_title(f"{label}\n" + "\n".join(_wrap(caption, 30)[:3]), fontsize=9)
    fig.tight_layout()
    return fig


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if len(line) + len(word) + 1 > width and line:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])


def file_facts(path: Path) -> dict:
    """Format, size, mode, JPEG quantisation and chroma subsampling of one image file."""
    with Image.open(path) as img:
        facts = {"file": Path(path).name, "format": img.format, "size": f"{img.size[0]}x{img.size[1]}",
                 "mode": img.mode}
        if img.format == "JPEG":
            from PIL import JpegImagePlugin
            q = img.quantization
            facts["luma table sum"] = int(sum(q[0])) if q else None
            facts["subsampling"] = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}.get(
                JpegImagePlugin.get_sampling(img), "other")
        else:
            facts["luma table sum"], facts["subsampling"] = None, "none (lossless)"
    return facts


def format_comparison(frame: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """The files as they came (COCO's JPEG, the model's PNG) and as the study stores them."""
    from .generate import raw_path as generated_raw
    from .real_data import plan_paths, raw_path as real_raw

    frame = mf.originals(frame)
    real = frame[frame.label_name == "real"].iloc[0]
    gen = frame[frame.label_name == "generated"].iloc[0]
    plan = pd.read_csv(plan_paths(profile)[0], keep_default_na=False).set_index("coco_id")
    original_real = real_raw(profile, plan.loc[int(real.coco_id)])
    key = Path(gen.path).stem
    rows = [
        {"stage": "as it came", "class": "real", **file_facts(original_real)},
        {"stage": "as it came", "class": "generated", **file_facts(generated_raw(profile, gen.split, key))},
        {"stage": "as stored", "class": "real", **file_facts(inside(data_root(), real.path))},
        {"stage": "as stored", "class": "generated", **file_facts(inside(data_root(), gen.path))},
    ]
    return pd.DataFrame(rows).set_index(["stage", "class"])


def resize_factors(frame: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """How much each image was shrunk (or enlarged) to reach the common side, by class."""
    frame = mf.originals(frame)
    shorter = frame[["orig_width", "orig_height"]].astype(float).min(axis=1)
    factors = pd.DataFrame({"class": frame["label_name"], "scale": profile.image_size / shorter})
    return factors.groupby("class")["scale"].describe()[["count", "min", "50%", "max"]]


def load_bench(profile: Profile, what: str) -> dict | None:
    path = results_root(profile.name) / f"bench_{what}.json"
    return json.loads(path.read_text()) if path.exists() else None


def workload() -> pd.DataFrame:
    """What each profile asks for: photographs to fetch and images to generate (from the profiles)."""
    from .profiles import PROFILES

    rows = []
    for p in PROFILES.values():
        rows.append({"profile": p.name, "photographs to fetch": sum(p.real_counts.values()),
                     "images to generate": sum(p.gen_counts.values()),
                     "generator": p.sd_model, "side (px)": p.sd_resolution, "steps": p.sd_steps})
    return pd.DataFrame(rows).set_index("profile")


def split_checks(frame: pd.DataFrame) -> pd.DataFrame:
    """Checks that the study's sets do not overlap: by COCO image and by caption."""
    from .coco import normalise

    frame = mf.originals(frame)
    real, gen = frame[frame.label_name == "real"], frame[frame.label_name == "generated"]
    gen_caps = gen["caption"].map(normalise)
    checks = {
        "no COCO image is both a real sample and a caption source":
            not set(real.coco_id.dropna()) & set(gen.coco_id.dropna()),
        "no COCO image is in two splits": not frame.groupby("coco_id")["split"].nunique().gt(1).any(),
        "no caption is generated twice": gen_caps.is_unique,
        "no generated caption is the displayed caption of a real sample":
            not set(gen_caps) & set(real["caption"].map(normalise)),
        "every generated image has its own seed": gen["seed"].is_unique,
    }
    return pd.DataFrame({"holds": pd.Series(checks)})


def generation_estimate(profile: Profile) -> pd.DataFrame | None:
    """Time to generate this profile's images at the rate measured by ``bench generate``."""
    bench = load_bench(profile, "generate")
    if bench is None:
        return None
    n = sum(profile.gen_counts.values())
    return pd.DataFrame([{"images": n, "measured images/s": bench["images_per_s"],
                          "device": bench["device"],
                          "estimated minutes on one such device": round(n / bench["images_per_s"] / 60, 1)}])
