"""Every chapter: the helpers of the book "Telling generated images from photographs".

Every piece of logic of the book lives in this package; the notebooks only call it. The long jobs
are commands: ``python -m helpers --help`` lists them. The subpackages are layers, each importing
only from those below it: core < data < (augment | inpaint) < classify < book < rehearsal < the
commands (``helpers/README.md``). Nothing is imported here, so that ``import helpers.core`` stays light.
"""

__version__ = "0.1.0"
