"""Unit tests of `dart export`'s selection rules (pure: no files)."""

from __future__ import annotations

import pytest

from dartmath.export.select import (
    Candidates,
    SelectOptions,
    place,
    response_hash,
    select,
    split_place,
)


def cands(*entries: tuple[int, int, int, str], dedup: str = "none") -> Candidates:
    """Candidates from (input, line, order, response) entries."""
    c = Candidates()
    for index, line, order, resp in entries:
        c.add(place(index, line), order, 0 if dedup == "none" else response_hash(resp, dedup))
    return c


def lines(kept) -> list[tuple[int, int]]:
    return [split_place(p) for p in kept.places]


def test_place_round_trips():
    assert split_place(place(3, 12_345_678_901)) == (3, 12_345_678_901)


def test_sample_order_is_input_then_sample_idx_then_line():
    c = cands((1, 1, 0, "x"), (0, 5, 2, "x"), (0, 9, 1, "x"), (0, 3, 1, "x"))
    kept = select(c, 10, None, SelectOptions())
    assert lines(kept) == [(0, 3), (0, 9), (0, 5), (1, 1)]


def test_target_caps_first_in_sample_order_unless_keep_over_target():
    c = cands((0, 1, 3, "a"), (0, 2, 0, "b"), (0, 3, 2, "c"), (0, 4, 1, "d"))
    kept = select(c, 4, 2, SelectOptions())
    assert lines(kept) == [(0, 2), (0, 4)] and kept.over_target == 2
    kept = select(c, 4, 2, SelectOptions(keep_over_target=True))
    assert len(kept.places) == 4 and kept.over_target == 0
    assert len(select(c, 4, None, SelectOptions()).places) == 4  # no target, no cap


def test_dedup_exact_and_normalized():
    entries = [(0, 1, 0, "A  b"), (0, 2, 1, "A  b"), (0, 3, 2, " a b\n"), (0, 4, 3, "c")]
    exact = select(cands(*entries, dedup="exact"), 4, None, SelectOptions(dedup="exact"))
    assert lines(exact) == [(0, 1), (0, 3), (0, 4)] and exact.duplicates == 1
    norm = select(cands(*entries, dedup="normalized"), 4, None, SelectOptions(dedup="normalized"))
    assert lines(norm) == [(0, 1), (0, 4)] and norm.duplicates == 2
    assert response_hash("X\t y", "normalized") == response_hash("x y", "normalized")
    assert response_hash("X y", "exact") != response_hash("x y", "exact")


def test_rules_apply_in_order_target_dedup_max():
    # Target 3 keeps a, a, b (the second a is a duplicate); max 1 keeps a; c was past the target.
    entries = [(0, 1, 0, "a"), (0, 2, 1, "a"), (0, 3, 2, "b"), (0, 4, 3, "c")]
    opts = SelectOptions(dedup="exact", max_per_query=1)
    kept = select(cands(*entries, dedup="exact"), 4, 3, opts)
    assert lines(kept) == [(0, 1)]
    assert (kept.over_target, kept.duplicates, kept.over_max) == (1, 1, 1)


@pytest.mark.parametrize(
    ("lo", "hi", "kept"),
    [(0.25, 1.0, True), (0.0, 0.25, True), (0.26, 1.0, False), (0.0, 0.24, False)],
)
def test_pass_rate_range_is_inclusive(lo, hi, kept):
    c = cands((0, 1, 0, "a"))
    result = select(c, 4, None, SelectOptions(min_pass_rate=lo, max_pass_rate=hi))
    assert bool(result.places) is kept
    assert result.filtered == (0 if kept else 1)


@pytest.mark.parametrize(
    "kwargs",
    [{"dedup": "fuzzy"}, {"max_per_query": 0}, {"min_pass_rate": 0.6, "max_pass_rate": 0.5}],
)
def test_bad_options_are_refused(kwargs):
    with pytest.raises(ValueError):
        SelectOptions(**kwargs)
