"""Chapters 1-6, the results page (notebooks/08_results): every number the chapters wrote, next to the paper's.

The page shows, for each profile that has results, one table per chapter
(:mod:`.results_tables`) under what its numbers are (:func:`caveat`: a smoke run's are pipeline
checks, not findings), and glues the headline numbers its prose quotes (:mod:`.results_glue`).
Nothing here computes a result: a piece not run yet says so.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from ..core.paths import results_root
from ..core.profiles import PROFILES, Profile, get_profile
from ..core.steps import made_from_standins
from .results_glue import glue_values, reported_values
from .results_tables import (  # noqa: F401 (the page's readers, used as rp.<reader> by the notebook)
    COLUMNS,
    NO_MATCHED_REAL,
    NOT_EVALUATED,
    NOT_REPORTED,
    NOT_RUN,
    classifier_eval_name,
    classifier_metrics,
    data_counts,
    evaluations,
    gradcam_check,
    inpaint_models,
    plain_number,
    probe_results,
    robustness,
    table2_averages,
    table3,
    training_speed,
    transfer,
)

SMOKE_CAVEAT = ("These numbers come from tiny random models and stand-in data: they are pipeline "
                "checks, not findings about real or generated images.")
REAL_RUN = "These numbers come from a run of the '{name}' profile: {description}."
REHEARSAL_CAVEAT = ("These numbers come from a rehearsal of the '{name}' profile: its code, against "
                    "stand-ins at the real addresses (random weights of the real architectures, a COCO "
                    "look-alike, smaller counts). They are pipeline checks, not findings.")
SECTIONS: dict[str, Callable[[Profile], pd.DataFrame]] = {
    "images": data_counts, "table2": table2_averages, "test": classifier_metrics, "speed": training_speed,
    "evaluations": evaluations, "table3": table3, "transfer": transfer, "robustness": robustness,
    "probe": probe_results, "gradcam": gradcam_check,
}


def profiles_with_results() -> list[Profile]:
    """The profiles (as defined in :mod:`helpers.core.profiles`) whose results folder holds a file."""
    found = []
    for profile in PROFILES.values():
        folder = results_root(profile.name)
        if folder.is_dir() and any(f.is_file() for f in folder.rglob("*")):
            found.append(profile)
    return found


def build_profile() -> Profile:
    """The profile this build of the book runs in (``$BOOK_PROFILE``, else ``smoke``)."""
    return get_profile(None)


def caveat(profile: Profile) -> str:
    """What the profile's numbers are: for ``smoke``, pipeline checks and not findings."""
    if profile.name == "smoke":
        return SMOKE_CAVEAT
    if made_from_standins(profile.name):
        return REHEARSAL_CAVEAT.format(name=profile.name)
    return REAL_RUN.format(name=profile.name, description=" ".join(profile.description.split()))


def page_glue(profiles: list[Profile]) -> dict:
    """Everything the page glues: the paper's numbers (``reported_*``), each profile's headline
    numbers (``<profile>_*``), and this build's profile under ``build_*`` (its name and caveat
    always; its numbers where they exist)."""
    build = build_profile()
    out = reported_values() | {"build_profile": build.name, "build_caveat": caveat(build)}
    for profile in profiles:
        values = glue_values(profile)
        out |= values
        if profile.name == build.name:
            out |= {"build" + key[len(profile.name):]: value for key, value in values.items()}
    return out


def how_to_run(profile_name: str | None = None) -> pd.DataFrame:
    """The chapters that write this page's numbers and the commands they run, for one profile."""
    p = get_profile(profile_name).name
    steps = [
        ("1. Data and generation", f"python -m helpers data --profile {p}; python -m helpers generate --profile {p}"),
        ("2. Augmentation", f"python -m helpers augment --profile {p} --both-classes"),
        ("3. Inpainting", f"python -m helpers inpaint --profile {p} --model M  (each model of the profile)"),
        ("4. Training", f"python -m helpers train --profile {p}; python -m helpers evaluate --profile {p}"),
        ("4. Training speed", f"python -m helpers bench train --profile {p}"),
        ("5. Ablation and transfer", f"run notebooks/05_ablation_and_transfer.ipynb with BOOK_PROFILE={p}"),
        ("all chapters at once", f"BOOK_PROFILE={p} make notebooks"),
    ]
    return pd.DataFrame(steps, columns=["chapter", "commands"]).set_index("chapter")


def _fmt(value) -> str:
    if isinstance(value, str):
        return value
    value = plain_number(value)
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:,.2f}"


def show(frame: pd.DataFrame):
    """The table for the page, numbers rounded for reading (the frame itself keeps them exact)."""
    key = "quantity" if "quantity" in frame.columns else frame.columns[0]
    return frame.set_index(key).style.format(_fmt)


def display_tables(reader: Callable[[Profile], pd.DataFrame], profiles: list[Profile]) -> None:
    """Show ``reader(profile)`` for each profile, under the profile's name and what its numbers are."""
    from IPython.display import Markdown, display  # a notebook kernel only (the book extra)

    if not profiles:
        display(Markdown(f"*{NOT_RUN}: no profile has results (see the commands at the top).*"))
    for profile in profiles:
        display(Markdown(f"**Profile `{profile.name}`.** {caveat(profile)}"))
        frame = reader(profile)
        display(show(frame) if not frame.empty else Markdown(f"*{NOT_RUN}.*"))
