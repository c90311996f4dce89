"""Every chapter: the one image grid behind the book's figures of images (samples, augmentations,
inpainting rows, predictions), so every such figure looks and fails alike.

A cell whose image cannot be read says so inside the figure, with the reason, instead of stopping
the chapter: a reader still sees the rest of the grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from ..data.images import BadImage, load_rgb


@dataclass(frozen=True)
class Cell:
    """One panel: an image (array, PIL image or file path; ``None`` leaves the panel empty), the
    title above it, the title's colour, and a colour map for one-channel images (masks)."""

    image: np.ndarray | Image.Image | Path | str | None
    title: str = ""
    color: str = "black"
    cmap: str | None = None


def _show(ax, cell: Cell, fontsize: int) -> None:
    image = cell.image
    if isinstance(image, (str, Path)):
        try:
            image = load_rgb(image, min_side=1)
        except (BadImage, ValueError) as exc:
            ax.text(0.5, 0.5, f"cannot show:\n{exc}", ha="center", va="center", fontsize=7, wrap=True)
            image = None
    if image is not None:
        image = np.asarray(image)
        ax.imshow(image, cmap=cell.cmap or ("gray" if image.ndim == 2 else None))
    if cell.title:
        ax.set_title(cell.title, fontsize=fontsize, color=cell.color)


def image_grid(rows: Sequence[Sequence[Cell]], *, title: str | None = None, note: str | None = None,
               row_labels: Sequence[str] | None = None, size: tuple[float, float] = (2.6, 3.0),
               fontsize: int = 9):
    """A figure of ``rows`` of :class:`Cell` (rows may differ in length); ``note`` fills an empty
    grid, ``row_labels`` name the rows on the left, ``size`` is one panel's (width, height) in inches."""
    rows = [list(r) for r in rows if len(r)] or [[Cell(None)]]
    ncols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(size[0] * ncols, size[1] * len(rows)), squeeze=False)
    for r, row in enumerate(rows):
        for c in range(ncols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(row):
                _show(ax, row[c], fontsize)
        if row_labels is not None and r < len(row_labels):
            axes[r, 0].set_ylabel(row_labels[r], fontsize=fontsize + 1)
    if note and all(cell.image is None for row in rows for cell in row):
        axes[0, 0].text(0.5, 0.5, note, ha="center", va="center", wrap=True)
    if title:
        fig.suptitle(title, fontsize=fontsize + 2)
    fig.tight_layout()
    return fig


def chunks(cells: Sequence[Cell], cols: int) -> list[list[Cell]]:
    """``cells`` laid out ``cols`` to a row (the last row may be shorter)."""
    cols = max(1, cols)
    return [list(cells[i:i + cols]) for i in range(0, len(cells), cols)]
