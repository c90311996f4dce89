"""The book's opening page: the study's pipeline as one picture, drawn when the book is built.

A reader meets seven chapters and a dozen commands; the picture says in one glance what feeds what:
the photographs and generated images of Chapter 1 feed both halves of the study, the inpainting
analysis (Chapter 3) and the classifier (Chapters 2, 4 and 5, then 6 beyond the paper), and every
half ends on the results page. Each box names its chapter, what it does and the ``python -m helpers`` commands that run it,
so the picture is also a map of ``make run``. It is drawn from :data:`STAGES` at build time rather
than pasted as an image, so it cannot drift from the commands (a test checks each command exists).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    key: str
    title: str
    what: str
    commands: tuple[str, ...]
    xy: tuple[float, float]  # the box's centre, in the figure's 0..10 x 0..4 frame


STAGES = (
    Stage("data", "1. Data and generation", "COCO 2017 photographs;\nSD 2.0 images from COCO captions",
          ("data", "generate"), (1.2, 2.9)),
    Stage("augment", "2. Augmentation", "the paper's Algorithm 1,\nand its both-classes control",
          ("augment",), (3.6, 2.9)),
    Stage("train", "4. Training", "ConvNeXt-XL, evaluation,\nshortcut checks and controls",
          ("train", "evaluate", "controls"), (6.0, 2.9)),
    Stage("ablation", "5. Ablation and transfer", "VGG-16, ResNet-50, EfficientNet-B0;\nDALL-E 2 and Imagen images",
          ("train --model", "evaluate", "predict"), (8.5, 2.9)),
    Stage("inpaint", "3. Inpainting", "partial and gated convolution, SD;\nFID/KID, NIQE, scores in the hole",
          ("inpaint",), (3.6, 0.9)),
    Stage("generalize", "6. What generalizes", "damaged images, a CLIP probe,\nGrad-CAM (beyond the paper)",
          ("robustness", "probe", "gradcam"), (6.0, 0.9)),
    Stage("results", "Results", "our numbers beside\nthe paper's, per profile", (), (8.5, 0.9)),
)
ARROWS = (("data", "augment"), ("augment", "train"), ("train", "ablation"), ("data", "inpaint"),
          ("inpaint", "results"), ("ablation", "results"), ("train", "generalize"), ("generalize", "results"))
# An arrow that would cross a box in between runs under the boxes instead (bottom to bottom, bent).
UNDER = {("inpaint", "results")}
BOX = (2.2, 1.3)  # width, height


def _box(ax, stage: Stage) -> None:
    from matplotlib.patches import FancyBboxPatch

    (x, y), (w, h) = stage.xy, BOX
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.04",
                                facecolor="#eef3fb" if stage.commands else "#fdf3e3", edgecolor="#44546a"))
    ax.text(x, y + 0.42, stage.title, ha="center", va="center", fontsize=9, weight="bold")
    ax.text(x, y + 0.02, stage.what, ha="center", va="center", fontsize=7)
    if stage.commands:
        ax.text(x, y - 0.45, " · ".join(stage.commands), ha="center", va="center", fontsize=7,
                family="monospace", color="#1f4e9a")


def _edge(a: Stage, b: Stage) -> tuple[tuple[float, float], tuple[float, float]]:
    """Where an arrow from box ``a`` to box ``b`` leaves and arrives: on the facing sides."""
    (ax_, ay), (bx, by), (w, h) = a.xy, b.xy, BOX
    if abs(ay - by) < 1e-6:
        return (ax_ + w / 2 + 0.05, ay), (bx - w / 2 - 0.05, by)
    if abs(ax_ - bx) < 1e-6:
        return (ax_, ay - h / 2 - 0.05), (bx, by + h / 2 + 0.05)
    return (ax_ + (w / 2 if bx > ax_ else -w / 2) * 0.6, ay - h / 2 - 0.05), (bx - w / 2 - 0.05, by)


def pipeline_figure():
    """The study's pipeline: one box per chapter, arrows for what feeds what."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4.2))
    ax.set(xlim=(-0.1, 10), ylim=(-0.5, 3.8))
    ax.axis("off")
    stages = {s.key: s for s in STAGES}
    for stage in STAGES:
        _box(ax, stage)
    for a, b in ARROWS:
        start, end, bend = *_edge(stages[a], stages[b]), "arc3"
        if (a, b) in UNDER:
            (sx, sy), (ex, ey), low = stages[a].xy, stages[b].xy, BOX[1] / 2 + 0.05
            start, end, bend = (sx, sy - low), (ex, ey - low), "arc3,rad=0.25"
        ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="-|>", color="#44546a", lw=1.2,
                                                              connectionstyle=bend))
    ax.set_title("The study, chapter by chapter (commands: python -m helpers ...; make run runs them in order)",
                 fontsize=9)
    fig.tight_layout()
    return fig
