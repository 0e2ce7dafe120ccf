"""Which correct responses of a query go into the training set (pure: no I/O).

A query's candidates are its correct responses, each known by its place (input and line), its
sample order and, for `dedup`, an 8-byte hash of its text. Sample order is (input position on
the command line, `sample_idx`, or the line number where there is none). The rules, in order:
1. pass rate (`min_pass_rate` <= correct / raw <= `max_pass_rate`): a query outside keeps nothing;
2. target: at most the query's `target` responses, the first in sample order (a Prop2Diff probe
   keeps every correct probe sample, even past the final target; DART-Math's sets hold exactly
   the target), unless `keep_over_target`; no target, no cap;
3. dedup: a response equal to an earlier kept one of the query is dropped (`exact`: the same
   string; `normalized`: the same after collapsing whitespace runs and case folding);
4. `max_per_query`: the first K left.
"""

from __future__ import annotations

import hashlib
from array import array
from dataclasses import dataclass

DEDUP_MODES = ("none", "exact", "normalized")

_LINE_BITS = 40  # a place is (input index << 40) | line number


def place(input_index: int, lineno: int) -> int:
    """One integer for a line of an input (input index and line number)."""
    return (input_index << _LINE_BITS) | lineno


def split_place(p: int) -> tuple[int, int]:
    """(input index, line number) of a place."""
    return p >> _LINE_BITS, p & ((1 << _LINE_BITS) - 1)


def response_hash(resp: str, mode: str) -> int:
    """An 8-byte hash of a response as `mode` compares them (`exact` or `normalized`)."""
    text = resp if mode == "exact" else " ".join(resp.split()).casefold()
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


@dataclass(frozen=True)
class SelectOptions:
    """The selection rules of the module docstring; ValueError when they cannot hold."""

    keep_over_target: bool = False
    dedup: str = "none"
    max_per_query: int | None = None
    min_pass_rate: float = 0.0
    max_pass_rate: float = 1.0

    def __post_init__(self) -> None:
        if self.dedup not in DEDUP_MODES:
            raise ValueError(f"dedup must be one of {', '.join(DEDUP_MODES)}, got {self.dedup!r}")
        if self.max_per_query is not None and self.max_per_query < 1:
            raise ValueError(f"max_per_query must be at least 1, got {self.max_per_query}")
        if not 0.0 <= self.min_pass_rate <= self.max_pass_rate <= 1.0:
            raise ValueError(
                "pass-rate range must satisfy 0 <= min <= max <= 1, got "
                f"[{self.min_pass_rate}, {self.max_pass_rate}]"
            )


class Candidates:
    """The correct responses of one query, compactly (24 bytes each): place, order, hash."""

    __slots__ = ("hashes", "orders", "places")

    def __init__(self) -> None:
        self.places = array("q")
        self.orders = array("q")  # sample_idx, or the line number
        self.hashes = array("q")  # 0 when not deduplicating

    def __len__(self) -> int:
        return len(self.places)

    def add(self, where: int, order: int, resp_hash: int = 0) -> None:
        self.places.append(where)
        self.orders.append(order)
        self.hashes.append(resp_hash)

    def in_sample_order(self) -> list[int]:
        """Indices of the candidates by (input, order, line)."""
        places, orders = self.places, self.orders
        return sorted(
            range(len(places)), key=lambda i: (places[i] >> _LINE_BITS, orders[i], places[i])
        )


@dataclass
class Kept:
    """What one query keeps (places, in sample order) and why the rest is left out."""

    places: list[int]
    filtered: int = 0  # correct responses of a query outside the pass-rate range
    over_target: int = 0
    duplicates: int = 0
    over_max: int = 0


def pass_rate_in_range(n_correct: int, n_samples: int, opts: SelectOptions) -> bool:
    """Whether a query's pass rate (correct / raw) is inside the options' inclusive range."""
    return opts.min_pass_rate <= n_correct / n_samples <= opts.max_pass_rate


def select(cands: Candidates, n_samples: int, target: int | None, opts: SelectOptions) -> Kept:
    """The responses one query keeps, by the rules of the module docstring."""
    if not pass_rate_in_range(len(cands), n_samples, opts):
        return Kept(places=[], filtered=len(cands))
    order = cands.in_sample_order()
    kept = Kept(places=[])
    if target is not None and not opts.keep_over_target and len(order) > target:
        kept.over_target = len(order) - target
        order = order[:target]
    seen: set[int] = set()
    for i in order:
        if opts.dedup != "none":
            if cands.hashes[i] in seen:
                kept.duplicates += 1
                continue
            seen.add(cands.hashes[i])
        if opts.max_per_query is not None and len(kept.places) >= opts.max_per_query:
            kept.over_max += 1
            continue
        kept.places.append(cands.places[i])
    return kept
