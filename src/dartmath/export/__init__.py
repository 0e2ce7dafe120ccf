"""`dart export`: the training set of run directories and graded pools, with its dataset card.

Modules, one job each: `inputs` (opening run directories and pool files, what each says, the
checks), `scan` (the first pass: per-query tallies across inputs), `select` (pure: which correct
responses are kept), `layout` (what a record looks like), `writers` (JSONL, Parquet, `datasets`
folders; staged and renamed), `report` and `card` (the figures, as text and as a dataset card),
`run` (`export_training_set`).
"""

from dartmath.export.report import ExportReport
from dartmath.export.run import ExportOptions, export_training_set
from dartmath.export.select import SelectOptions

__all__ = ["ExportOptions", "ExportReport", "SelectOptions", "export_training_set"]
