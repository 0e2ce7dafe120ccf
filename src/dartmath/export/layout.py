"""What one training record looks like: its layout, the fields `with_meta` adds, the prompt a
template renders, and the typed columns a Parquet schema needs.

Layouts: `query-response` (`query`, `response`: the names of the released
`hkust-nlp/dart-math-hard` and `-uniform` datasets) and `messages` (a user turn and an assistant
turn, as TRL, LLaMA-Factory and axolotl read chat data). With `with_meta`, every record also
has `query_id` (as a string), `source`, the query's metadata fields (in first-seen order; null
where a line has none), `sample_idx`, `pass_rate` (the query's, over every input) and `model`.
A metadata field named like a field of the export (`response`, `messages`) is written as
`input_<name>`, as `dartmath.record` does with an input's own `source`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dartmath.errors import DartError
from dartmath.export.scan import BOOL, FLOAT, INT, STR
from dartmath.record import SOURCE
from dartmath.sampling.prompts import PromptTemplate, get_template

LAYOUTS = ("query-response", "messages")
QUERY_RESPONSE, MESSAGES = LAYOUTS

# Column kinds: Arrow types, `json` (any JSON value, stored as its text) and the chat turns.
STRING = "string"
INT64 = "int64"
FLOAT64 = "float64"
BOOLEAN = "bool"
JSON = "json"
TURNS = "turns"
_RESERVED = frozenset({"response", "messages"})


def prompt_template(name: str | None) -> PromptTemplate | None:
    """The fixed-text template that renders the user turn, or None for the bare query;
    DartError for `chat`, which needs the model's tokenizer."""
    if name is None:
        return None
    template = get_template(name)
    if template.use_chat_template:
        raise DartError(
            "--prompt-template chat: the chat template is the model's own and trainers apply "
            "it themselves; export the messages layout (--format messages) instead"
        )
    return template


def column_kind(kinds: set[str]) -> str:
    """The column kind of a metadata field from the kinds of its values."""
    if kinds == {BOOL}:
        return BOOLEAN
    if kinds == {INT}:
        return INT64
    if kinds and kinds <= {INT, FLOAT}:
        return FLOAT64
    return STRING if kinds == {STR} else JSON


def output_name(field: str) -> str:
    """The name a metadata field is written under."""
    return f"input_{field}" if field in _RESERVED else field


@dataclass(frozen=True)
class Layout:
    """How a kept pool line becomes a training record."""

    name: str = QUERY_RESPONSE
    with_meta: bool = False
    template: PromptTemplate | None = None
    meta_kinds: Mapping[str, set[str]] | None = None  # metadata field -> kinds of its values

    def record(self, rec: Mapping[str, Any], pass_rate: float, model: str | None) -> dict:
        """The training record of pool line `rec` (its query's pass rate; its model)."""
        query = rec["query"] if self.template is None else self.template.render(rec["query"])
        if self.name == MESSAGES:
            out: dict[str, Any] = {
                "messages": [
                    {"role": "user", "content": query},
                    {"role": "assistant", "content": rec["resp"]},
                ]
            }
        else:
            out = {"query": query, "response": rec["resp"]}
        if self.with_meta:
            for name in ("query_id", SOURCE):  # strings, as the ids are compared
                value = rec.get(name)
                out[name] = None if value is None else str(value)
            for field in self.meta_kinds or {}:
                out[output_name(field)] = rec.get(field)
            out["sample_idx"] = rec.get("sample_idx")
            out["pass_rate"] = pass_rate
            out["model"] = model
        return out

    def columns(self) -> list[tuple[str, str]]:
        """(name, kind) of every field of a record, in record order."""
        if self.name == MESSAGES:
            cols = [("messages", TURNS)]
        else:
            cols = [("query", STRING), ("response", STRING)]
        if self.with_meta:
            cols += [("query_id", STRING), (SOURCE, STRING)]
            cols += [
                (output_name(field), column_kind(kinds))
                for field, kinds in (self.meta_kinds or {}).items()
            ]
            cols += [("sample_idx", INT64), ("pass_rate", FLOAT64), ("model", STRING)]
        return cols
