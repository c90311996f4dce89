"""Helpers of the book "Telling generated images from photographs".

Every piece of logic of the book lives in this package; the notebooks only call it.
The long jobs are commands: ``python -m helpers --help`` lists them.
"""

__version__ = "0.1.0"
