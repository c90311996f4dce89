"""Every chapter: what the notebooks call, one module per chapter, and the shared pieces of their figures.

:mod:`.chapter` sets a chapter up and runs its steps; :mod:`.figures` draws every grid of
images; ``ch1_data`` ... ``ch5_transfer`` are the
chapters' tables and figures; :mod:`.results_page` is the results page; :mod:`.pipeline` lists
every step in the chapters' order (``make run``).

Re-exported here: the modules that load without torch. ``ch3_inpaint``, ``ch4_train``,
``ch4_controls``, ``spectra``, ``ch5_ablation``, ``ch5_transfer`` and ``pipeline`` import the inpainting or classifier code
(torch) or belong to the chapters that do: import them by their module path, as the notebooks do.
"""

from . import ch1_data, ch2_augment, chapter, figures, results_page
from .chapter import StepNotDone, glue_figure, prerequisites, run_step, setup
from .figures import Cell, chunks, image_grid

__all__ = ["Cell", "StepNotDone", "ch1_data", "ch2_augment", "chapter", "chunks", "figures", "glue_figure", "image_grid",
           "prerequisites", "results_page", "run_step", "setup"]
