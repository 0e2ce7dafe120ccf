"""The queries of a run and their difficulty priors: reading records from any source
(`sources`), presets of known datasets (`presets`), loading and checking queries, of one
source or several with ids unique across them (`load`),
reporting every problem at once (`problems`), and Prop2Diff pass-rate priors (`priors`)."""

from dartmath.queries.load import (
    Query,
    QuerySource,
    derive_query_id,
    load_queries,
    load_query_sources,
)
from dartmath.queries.presets import PRESETS, gsm8k_reference, math_reference
from dartmath.queries.problems import MAX_REPORTED, Problem, QueryInputError
from dartmath.queries.sources import iter_source

__all__ = [
    "MAX_REPORTED",
    "PRESETS",
    "Problem",
    "Query",
    "QueryInputError",
    "QuerySource",
    "derive_query_id",
    "gsm8k_reference",
    "iter_source",
    "load_queries",
    "load_query_sources",
    "math_reference",
]
