"""Tests of the strategy spec and the Prop2Diff target formulas (pure logic)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from dartmath.synth.strategies import (
    STOP_REASONS,
    MissingPriorError,
    StrategySpec,
    exact_rate,
    prop2diff_lower_bound,
    prop2diff_target,
    prop2diff_targets,
    targets_from_prior,
)

# --------------------------------------------------------------------------------------------
# StrategySpec


def test_spec_constructors_and_labels() -> None:
    assert StrategySpec.uniform(40) == StrategySpec("uniform", k_u=40)
    assert StrategySpec.prop2diff(40, n_probe=8) == StrategySpec("prop2diff", k_p=40, n_probe=8)
    assert StrategySpec.vrt(16).n_vrt == 16
    assert StrategySpec.prop2diff(40, n_probe=8).describe() == "prop2diff(k_p=40, n_probe=8)"
    assert StrategySpec.prop2diff(40).describe() == "prop2diff(k_p=40)"
    assert StrategySpec.uniform(3).counts_correct
    assert not StrategySpec.vrt(3).counts_correct


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "rejection"}, "unknown strategy 'rejection'"),
        ({"name": "uniform"}, "needs k_u"),
        ({"name": "prop2diff", "n_probe": 8}, "needs k_p"),
        ({"name": "vrt"}, "needs n_vrt"),
        ({"name": "uniform", "k_u": 0}, "k_u must be an integer >= 1"),
        ({"name": "uniform", "k_u": -3}, "k_u must be an integer >= 1"),
        ({"name": "uniform", "k_u": 2.5}, "k_u must be an integer >= 1"),
        ({"name": "uniform", "k_u": True}, "k_u must be an integer >= 1"),
        ({"name": "prop2diff", "k_p": 40, "n_probe": 0}, "n_probe must be an integer >= 1"),
        ({"name": "prop2diff", "k_p": 40, "k_u": 40}, "k_u does not apply to strategy 'prop2diff'"),
        ({"name": "uniform", "k_u": 4, "n_probe": 8}, "n_probe does not apply"),
        ({"name": "vrt", "n_vrt": 4, "k_p": 8}, "k_p does not apply"),
    ],
)
def test_spec_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StrategySpec(**kwargs)


def test_stop_reasons_are_documented_strings() -> None:
    assert set(STOP_REASONS) == {"target_met", "n_samples_done", "max_raw", "budget"}


# --------------------------------------------------------------------------------------------
# Prop2Diff targets


def test_prop2diff_formula() -> None:
    rates = {"easy": 0.9, "mid": 0.5, "hard": 0.1, "never": 0.0}
    # max fail rate 1 (the never-solved query): t = max(1, ceil(k_p * f))
    assert prop2diff_targets(rates, 40) == {"easy": 4, "mid": 20, "hard": 36, "never": 40}


def test_prop2diff_normalises_by_the_largest_fail_rate() -> None:
    rates = {"a": 0.75, "b": 0.5, "c": 0.9}  # fails 0.25, 0.5, 0.1: max 0.5
    assert prop2diff_targets(rates, 10) == {"a": 5, "b": 10, "c": 2}


def test_prop2diff_all_easy_gives_one_each() -> None:
    assert prop2diff_targets({"a": 1.0, "b": 1.0, "c": 1}, 100) == {"a": 1, "b": 1, "c": 1}


def test_prop2diff_all_zero_pass_rates_gives_k_p_each() -> None:
    assert prop2diff_targets({"a": 0.0, "b": 0.0}, 7) == {"a": 7, "b": 7}


def test_prop2diff_minimum_is_one() -> None:
    targets = prop2diff_targets({"nearly": 0.9999, "solved": 1.0, "never": 0.0}, 40)
    assert targets == {"nearly": 1, "solved": 1, "never": 40}


def test_prop2diff_ceil_when_k_p_f_is_exactly_integral() -> None:
    # Naive floats get these wrong: 10 * (1 - 0.7) = 3.0000000000000004 -> 4.
    assert math.ceil(10 * (1 - 0.7)) == 4
    assert prop2diff_targets({"q": 0.7, "z": 0.0}, 10)["q"] == 3
    assert math.ceil(40 * (1 - 0.95)) == 3
    assert prop2diff_targets({"q": 0.95, "z": 0.0}, 40)["q"] == 2
    assert math.ceil(100 * (1 - 0.41)) == 60
    assert prop2diff_targets({"q": 0.41, "z": 0.0}, 100)["q"] == 59
    # f_i / max f exactly integral after normalisation: 0.3 / 0.6 * 20 = 10 (floats: 11)
    assert math.ceil(20 * (1 - 0.7) / (1 - 0.4)) == 11
    assert prop2diff_targets({"q": 0.7, "r": 0.4}, 20) == {"q": 10, "r": 20}
    # counts ratios (what probes and query-info files give) are exact too: 1 - 2/3 = 1/3
    assert prop2diff_targets({"q": 2 / 3, "z": 0.0}, 30)["q"] == 10


def test_prop2diff_ceil_just_above_an_integer_rounds_up() -> None:
    assert prop2diff_targets({"q": 0.699, "z": 0.0}, 10)["q"] == 4  # 3.01 -> 4
    assert prop2diff_targets({"q": 0.7001, "z": 0.0}, 10)["q"] == 3  # 2.999 -> 3


def test_prop2diff_accepts_exact_fractions() -> None:
    assert prop2diff_targets({"q": Fraction(7, 10), "z": Fraction(0)}, 10) == {"q": 3, "z": 10}


def test_prop2diff_target_helpers() -> None:
    assert prop2diff_target(Fraction(1, 2), Fraction(0), 40) == 1  # every f is 0
    assert prop2diff_target(Fraction(0), Fraction(1, 2), 40) == 1  # min 1
    assert prop2diff_target(Fraction(1, 4), Fraction(1, 2), 40) == 20
    assert prop2diff_lower_bound(Fraction(3, 10), 10) == 3
    assert prop2diff_lower_bound(Fraction(0), 10) == 1
    # the lower bound never exceeds the final target, whatever the max fail rate (<= 1)
    for num in range(0, 11):
        for max_num in range(num, 11):
            f, mf = Fraction(num, 10), Fraction(max_num, 10)
            if mf > 0:
                assert prop2diff_lower_bound(f, 13) <= prop2diff_target(f, mf, 13)


def test_prop2diff_empty_and_bad_inputs() -> None:
    assert prop2diff_targets({}, 10) == {}
    with pytest.raises(ValueError, match="k_p must be an integer >= 1"):
        prop2diff_targets({"a": 0.5}, 0)
    for bad in (float("nan"), -0.1, 1.5, "0.5", True, None):
        with pytest.raises(ValueError, match="pass rate of 'a'"):
            prop2diff_targets({"a": bad}, 10)


def test_exact_rate_reads_floats_as_count_ratios() -> None:
    assert exact_rate(0.7) == Fraction(7, 10)
    assert exact_rate(1 / 3) == Fraction(1, 3)
    assert exact_rate(0) == 0
    assert exact_rate(Fraction(3, 8)) == Fraction(3, 8)


def test_targets_from_prior_missing_ids_error_lists_them() -> None:
    prior = {f"q{i}": 0.5 for i in range(3)}
    ids = [f"q{i}" for i in range(10)]
    with pytest.raises(MissingPriorError) as err:
        targets_from_prior(ids, prior, 10)
    assert err.value.missing == [f"q{i}" for i in range(3, 10)]
    text = str(err.value)
    assert "7 of 10 queries" in text
    assert "'q3'" in text and "'q7'" in text and "and 2 more" in text
    assert "'q8'" not in text
    assert isinstance(err.value, ValueError)


def test_targets_from_prior_ignores_other_queries_of_the_prior() -> None:
    # "x" (never solved) is not in this run: normalisation uses this run's max fail rate (0.5)
    prior = {"a": 0.5, "b": 0.75, "x": 0.0}
    assert targets_from_prior(["a", "b"], prior, 10) == {"a": 10, "b": 5}
