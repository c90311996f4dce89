"""The dress rehearsal (issue 9, every chapter): stand-ins placed at the real addresses.

A rehearsal builds the whole book in ``course`` or ``paper`` offline: COCO comes from a loopback
server laid out like COCO's own (:mod:`.coco_mirror`, reached through ``BOOK_COCO_URL``), the
models from a hand-made Hugging Face cache under their real hub ids (:mod:`.hub`, with
``HF_HOME`` and ``HF_HUB_OFFLINE=1``). The book's code runs unchanged; only the assets are
stand-ins, so nothing a rehearsal measures is a finding. ``python -m helpers.rehearsal --help``
lists the commands the Makefile uses.
"""

from .coco_mirror import BAD_KINDS, build_coco_mirror, rle_counts, serve
from .hub import (
           SD2_INPAINT,
           build_hub_cache,
           component_configs,
           hub_ids_for,
           model_index,
)

__all__ = ["BAD_KINDS", "SD2_INPAINT", "build_coco_mirror", "build_hub_cache", "component_configs",
           "hub_ids_for", "model_index", "rle_counts", "serve"]
