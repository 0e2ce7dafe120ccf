"""Held-out grader check: dartmath against math-verify on DeepMind's mathematics_dataset items.

No labelled case of tests/data comes from these items (three rules were changed after the first
run of this bench showed what it missed: bench/README.md says which, with the figures before
and after, and on items of another seed). The generator (PyPI `mathematics_dataset`,
DeepMind 2019) writes its reference answers in programming syntax: `5*k**3 + 215*k - 85`,
`-2*u*(u - 4)*(u + 1066)**2`, `x**(13/5)`, `-22*sqrt(3)/3`, `-29, 1/308, 1`, `True`. For each
item the reference is the generator's answer string exactly, and two responses are written as a
model would write them, in LaTeX:
  (a) correct: the same value rendered with `sympy.latex` (the reference parsed with sympy: this
      is bench code reading trusted generator output), with some variety: implicit products or
      `\\cdot`, `\\frac` or `\\dfrac`, `x^{13/5}` or `x^{\\frac{13}{5}}`, `\\left(` dropped,
      the factored form kept or (for a few) expanded, terms in either order; booleans as
      Yes/No/True/False; lists as `-3, 5` or `-3 and 5`. Most end in "The answer is $X$." or
      `\\boxed{X}` after a few lines of text; about 10% are the bare answer only;
  (b) perturbed: the same with one value changed (a coefficient +1 or x-1, an exponent or a
      root changed, a list element changed, the boolean flipped), checked with sympy to differ
      from the reference (an item whose perturbation happens to be equal is drawn again).
Both graders judge every (reference, response) pair: dartmath's `Grader` (worker processes,
per-item timeout) and math-verify, whose gold is parsed as is (`parse(gold)`) and also the way
bench_grader.py does it (`parse("$" + gold + "$")`): the fairer of the two for math-verify (the
higher accuracy on correct items minus false-positive share, measured in this run) is the
baseline, and the other is printed too.

Prints, side by side for dartmath and math-verify: accuracy on the correct responses (share graded
correct), false positives on the perturbed ones (count and share), overall, per module, per answer kind
and per ending, and up to `--examples` examples of each kind of miss for each grader.

    .venv/bin/python bench/bench_heldout_grader.py                 # 2,000 items, ~1 min on 2 cores
    .venv/bin/python bench/bench_heldout_grader.py --quick         # 200 items, under a minute
    .venv/bin/python bench/bench_heldout_grader.py --dump /tmp/heldout.jsonl   # keep the items

Needs the `bench` extra: `pip install -e '.[bench]'` (mathematics_dataset, which brings absl-py
and six, and math-verify). Its 1.0.1 release predates
numpy 2 and sympy 1.7: `_load_modules` patches four lines of its `sample/polynomials.py` in memory
(an import path, `np.object`, two `ndarray.itemset` calls) and, for determinism, two of
`util/composition.py` (a set of objects hashed by address ordered a question's statements);
nothing on disk.
Seeded: the generator's global `random`, `np.random` and `sympy.core.random` (its `randprime`),
and this file's own `random.Random`, all from `--seed`. The generator also iterates over sets of
strings (variable letters), whose order follows PYTHONHASHSEED: run as a script, the bench
re-executes itself with PYTHONHASHSEED=0 unless that is already set, so the same items come out
on every run and machine.

Goals: dartmath accuracy on correct responses >= 99.5%; dartmath false positives = 0 and never
more than math-verify's. Exit code 1 when a goal fails (or dartmath's grader cannot be imported).
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import os
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import orjson

GOAL_ACCURACY = 0.995

# Modules whose answers are values or expressions in programming syntax. Skipped: bases other
# than 10, clock times, unit conversions, probability (fractions: arithmetic__div has them), and
# answers naming a letter (`Which is bigger: r or g?` -> `r`), which need the question to read.
MODULES = [
    "algebra__linear_1d",
    "algebra__linear_2d",
    "algebra__polynomial_roots",
    "algebra__polynomial_roots_composed",
    "algebra__sequence_nth_term",
    "arithmetic__add_or_sub",
    "arithmetic__div",
    "arithmetic__mixed",
    "arithmetic__simplify_surd",
    "calculus__differentiate",
    "calculus__differentiate_composed",
    "comparison__kth_biggest",
    "comparison__pair",
    "comparison__sort",
    "numbers__is_factor",
    "numbers__is_prime",
    "numbers__list_prime_factors",
    "numbers__round_number",
    "polynomials__add",
    "polynomials__collect",
    "polynomials__compose",
    "polynomials__evaluate",
    "polynomials__expand",
    "polynomials__simplify_power",
]

# mathematics_dataset 1.0.1 (2019) against numpy >= 2 and sympy >= 1.7, and for determinism:
# (module, [(old, new)]), applied in memory to the installed source.
_SHIM = [
    (
        "mathematics_dataset.sample.polynomials",
        [
            (
                "from sympy.solvers.diophantine import base_solution_linear",
                "from sympy.solvers.diophantine.diophantine import base_solution_linear",
            ),
            ("dtype=np.object)", "dtype=object)"),
            ("coeffs.itemset(index, value)", "coeffs[index] = value"),
            (
                "expanded_coefficients.itemset(power, coeffs)",
                "expanded_coefficients[power] = coeffs",
            ),
        ],
    ),
    (
        # determinism: a set of objects hashed by address ordered the statements of a question
        "mathematics_dataset.util.composition",
        [
            (
                "entities = set(context.child_entities)",
                "entities = dict.fromkeys(context.child_entities)",
            ),
            ("entities.add(maybe_entity)", "entities[maybe_entity] = None"),
        ],
    ),
]


def _load_modules() -> dict[str, Callable]:
    """The generator's train modules (full entropy range), by flat name, after the shim."""
    if importlib.util.find_spec("mathematics_dataset") is None:
        raise SystemExit(
            "mathematics_dataset is not installed: .venv/bin/pip install mathematics_dataset"
        )
    for name, fixes in _SHIM:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        src = spec.loader.get_source(name)
        for old, new in fixes:  # a fix whose line is gone is not needed (or the bench fails)
            src = src.replace(old, new)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        exec(compile(src, spec.origin, "exec"), mod.__dict__)
        parent, _, leaf = name.rpartition(".")
        setattr(importlib.import_module(parent), leaf, mod)
    from mathematics_dataset.modules import modules

    flat: dict[str, Callable] = {}

    def add(d: dict, prefix: str | None = None) -> None:
        for k, v in d.items():
            full = f"{prefix}__{k}" if prefix else k
            if isinstance(v, dict):
                add(v, full)
            else:
                flat[full] = v

    add(modules.train(lambda r: r))
    return flat


# --------------------------------------------------------------------------------------------
# items


@dataclass
class HeldOut:
    """One generated problem, a correct response and a perturbed one (written in LaTeX)."""

    module: str
    question: str
    reference: str
    kind: str  # bool, number, list, expression
    variant: str  # how the value was rendered
    ending: str  # answer is / boxed / bare
    correct_answer: str
    correct_resp: str
    perturbed_answer: str
    perturbed_resp: str
    perturbation: str
    verdicts: dict = field(default_factory=dict)


_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_NUM = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?")
_DEC = re.compile(r"-?\d+\.\d+")

_PREAMBLES = [
    "Let's work through this step by step.",
    "We start by rewriting the expression so that like terms sit together.",
    "First we simplify each part, then combine the results.",
    "Carefully applying the rules and checking each step, we get the result below.",
    "This is a direct computation; let's be careful with the signs.",
    "We can verify the result by substituting back into the original statement.",
    "Collecting terms and simplifying gives the final form.",
    "Let me restate the problem in my own words before solving it.",
]
_ENDINGS_IS = ["The answer is ${x}$.", "So the answer is ${x}$.", "The final answer is ${x}$."]
_ENDINGS_BOX = [
    "Therefore, the answer is $\\boxed{{{x}}}$.",
    "$$\\boxed{{{x}}}$$",
    "So the final answer is $\\boxed{{{x}}}$.",
    "\\boxed{{{x}}}",
]


def _sym(ref: str):
    """Parse trusted generator output with sympy (lower-case letters are always symbols)."""
    from sympy import Symbol
    from sympy.parsing.sympy_parser import parse_expr

    # Parsed unevaluated, then evaluated at once: `-2*(m - 7)*(m + 1)` keeps its factors (parsed
    # left to right, `-2*(m - 7)` alone would be distributed to `14 - 2*m`).
    return parse_expr(ref, local_dict={c: Symbol(c) for c in _LETTERS}, evaluate=False).doit()


def _differs(a, b, rng: random.Random) -> bool:
    """True when sympy shows a != b (expanded difference non-zero, and non-zero at a point)."""
    import sympy

    d = sympy.expand(a - b)
    if d == 0:
        return False
    syms = sorted(d.free_symbols, key=str)
    for _ in range(3):
        pt = {s: sympy.Rational(rng.randint(2, 40), rng.randint(1, 9)) for s in syms}
        v = sympy.N(d.subs(pt), 50)
        if v.is_number and abs(complex(v)) > 1e-30:
            return True
    return False


def _thousands(s: str) -> str:
    neg, digits = s.startswith("-"), s.lstrip("-")
    groups = []
    while len(digits) > 3:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    return ("-" if neg else "") + "{,}".join([digits, *groups])


def _tex_number(s: str, rng: random.Random, variant: list[str]) -> str:
    """A number as the generator wrote it (`-7`, `2536784.03`, `-48145/27436`) in LaTeX."""
    if "/" in s:
        neg, (a, b) = s.startswith("-"), s.lstrip("-").split("/")
        cmd = "\\dfrac" if rng.random() < 0.3 else "\\frac"
        variant.append(cmd[1:])
        return ("-" if neg else "") + f"{cmd}{{{a}}}{{{b}}}"
    if "." not in s and len(s.lstrip("-")) >= 5 and rng.random() < 0.15:
        variant.append("thousands{,}")
        return _thousands(s)
    return s


def _style(rng: random.Random) -> dict:
    """A model-like way of writing LaTeX, drawn once per item (both responses share it)."""
    return {
        "mul": rng.choice([None, None, "dot"]),  # implicit products or \cdot
        "fold": rng.random() < 0.3,  # x^{13/5} rather than x^{\frac{13}{5}}
        "order": "rev-lex" if rng.random() < 0.15 else None,  # ascending powers
        "dfrac": rng.random() < 0.25,
        "plain_parens": rng.random() < 0.5,  # ( ) rather than \left( \right)
        "tight": rng.random() < 0.3,  # fewer spaces
    }


def _tex_expr(expr, rng: random.Random, variant: list[str], style: dict) -> str:
    """An expression in LaTeX in the given style; the style's names are added to `variant`."""
    import sympy

    kw = {"mul_symbol": style["mul"], "fold_frac_powers": style["fold"]}
    if style["order"]:
        kw["order"] = style["order"]
    s = sympy.latex(expr, **kw)
    names = [
        "cdot" if style["mul"] == "dot" else "implicit",
        *(["x^{a/b}"] if style["fold"] and "^{" in s else []),
        *(["ascending"] if style["order"] else []),
    ]
    if style["dfrac"] and "\\frac" in s:
        s = s.replace("\\frac", "\\dfrac")
        names.append("dfrac")
    if style["plain_parens"] and "\\left" in s:
        s = s.replace("\\left(", "(").replace("\\right)", ")")
        names.append("plain ()")
    if style["tight"]:
        s = re.sub(r"\s+(?=[-+^{}()])|(?<=[-+{}()])\s+", "", s)
        s = re.sub(r"\s+", " ", s)
        names.append("tight")
    variant.extend(names)
    return s


_BOOL_WORDS = {
    True: ["Yes", "yes", "\\text{Yes}", "True", "\\text{True}", "\\text{yes}"],
    False: ["No", "no", "\\text{No}", "False", "\\text{False}", "\\text{no}"],
}


def _wrap(answer: str, kind: str, ending: str, rng: random.Random, pre: str) -> str:
    if ending == "bare":
        return answer
    if ending == "answer is":
        tpl = rng.choice(_ENDINGS_IS)
        if kind == "bool" and not answer.startswith("\\"):
            tpl = tpl.replace("${x}$", "{x}")
    else:
        tpl = rng.choice(_ENDINGS_BOX)
    return pre + "\n\n" + tpl.format(x=answer)


def _perturb_number(s: str, rng: random.Random) -> tuple[str, str]:
    """A decimal/integer/fraction string with one value changed."""
    neg = s.startswith("-")
    body = s.lstrip("-")
    if "/" in body:
        a, b = body.split("/")
        op = rng.choice(["num+1", "den+1", "sign"])
        if op == "num+1":
            body = f"{int(a) + 1}/{b}"
        elif op == "den+1":
            body = f"{a}/{int(b) + 1}"
        else:
            neg = not neg
        return ("-" if neg else "") + body, op
    if "." in body and rng.random() < 0.5:  # the last digit off by one: a near miss
        d = int(body[-1])
        body = body[:-1] + str(d + 1 if d < 9 else d - 1)
        return ("-" if neg else "") + body, "last digit"
    if body.strip("0.") == "" or rng.random() < 0.6:  # zero cannot change sign
        if "." in body:
            ip, fp = body.split(".")
            v = int(ip) + (-1 if neg else 1)
            out = f"{abs(v)}.{fp}"
            return ("-" if (neg and v != 0) or (v < 0) else "") + out, "+1"
        return str(int(s) + 1), "+1"
    return ("" if neg else "-") + body, "x-1"


def _rebuild(e, path: tuple[int, ...], new):
    if not path:
        return new
    args = list(e.args)
    args[path[0]] = _rebuild(args[path[0]], path[1:], new)
    return e.func(*args)


def _sites(e, path=()):
    """(path, node, role): numeric coefficients (coef), powers with a numeric exponent (pow),
    surds such as sqrt(3) (radicand). Exponents are changed only through their power."""
    import sympy

    if e.is_Number:
        yield path, e, "coef"
        return
    if isinstance(e, sympy.Pow) and e.exp.is_Number:
        if e.base.is_Number and not e.exp.is_Integer:
            yield path, e, "radicand"
            return
        yield path, e, "pow"
        yield from _sites(e.base, (*path, 0))
        return
    for i, a in enumerate(e.args):
        yield from _sites(a, (*path, i))


def _perturb_expr(expr, rng: random.Random):
    """The expression with one value changed, and what was changed (None: found nothing)."""
    import sympy

    sites = list(_sites(expr))
    options = []
    for path, node, role in sites:
        if role == "coef":
            if node != -1:
                options.append(("coef+1", path, node + 1 if node + 1 != 0 else node + 2))
            options.append(("coef x-1", path, -node))
        elif role == "pow":
            q = node.exp
            new_exp = q + 1 if q.is_Integer else sympy.Rational(q.p + 1, q.q)
            if new_exp == 0:
                new_exp = q + 2
            options.append(("exponent", path, sympy.Pow(node.base, new_exp)))
        elif role == "radicand":
            options.append(("radicand+1", path, sympy.Pow(node.base + 1, node.exp)))
    rng.shuffle(options)
    options += [("whole x-1", (), -expr), ("whole +1", (), expr + 1)]
    for name, path, new in options:
        out = _rebuild(expr, path, new) if path else new
        if _differs(out, expr, rng):
            return out, name
    return None, None


def _classify(ref: str) -> str | None:
    if ref in ("True", "False"):
        return "bool"
    if ", " in ref:
        return "list" if all(_NUM.fullmatch(x) for x in ref.split(", ")) else None
    if _NUM.fullmatch(ref):
        return "number"
    if re.fullmatch(r"[a-z]", ref) and "**" not in ref:
        return None  # a letter: an option or a variable named in the question
    return "expression"


def _make_item(module: str, question: str, ref: str, rng: random.Random) -> HeldOut | None:
    import sympy

    kind = _classify(ref)
    if kind is None:
        return None
    r = rng.random()
    ending = "bare" if r < 0.1 else ("answer is" if r < 0.55 else "boxed")
    pre = " ".join(rng.sample(_PREAMBLES, rng.randint(1, 3)))
    variant: list[str] = []
    if kind == "bool":
        value = ref == "True"
        i = rng.randrange(len(_BOOL_WORDS[True]))
        good, bad = _BOOL_WORDS[value][i], _BOOL_WORDS[not value][i]
        variant.append(good.replace("\\text{", "text{").lower())
        what = "flipped"
    elif kind == "number":
        state = rng.getstate()
        good = _tex_number(ref, rng, variant)
        bad_s, what = _perturb_number(ref, rng)
        if _DEC.fullmatch(ref):
            if sympy.Rational(bad_s) == sympy.Rational(ref):
                return None
        elif not _differs(_sym(bad_s), _sym(ref), rng):
            return None
        after = rng.getstate()
        rng.setstate(state)  # the same rendering for the perturbed value
        bad = _tex_number(bad_s, rng, [])
        rng.setstate(after)
    elif kind == "list":
        parts = ref.split(", ")
        j = rng.randrange(len(parts))
        new_j, what = _perturb_number(parts[j], rng)
        bad_parts = [*parts[:j], new_j, *parts[j + 1 :]]
        if {sympy.Rational(x) for x in bad_parts} == {sympy.Rational(x) for x in parts}:
            return None
        what = f"element {what}"
        state = rng.getstate()
        texts = [_tex_number(p, rng, variant) for p in parts]
        rng.setstate(state)
        bad_texts = [_tex_number(p, rng, []) for p in bad_parts]
        sorted_list = module.startswith("comparison")
        joiner = "and" if (rng.random() < 0.35 and not sorted_list) else ","
        variant.append("a and b" if joiner == "and" else "a, b")

        def join(xs: list[str]) -> str:
            if joiner == ",":
                return ", ".join(xs)
            return ", ".join(xs[:-1]) + " and " + xs[-1]

        good, bad = join(texts), join(bad_texts)
        variant = sorted(set(variant))
    else:
        expr = _sym(ref)
        shown = expr
        if isinstance(expr, sympy.Mul) and any(isinstance(a, sympy.Add) for a in expr.args):
            if rng.random() < 0.2:
                shown = sympy.expand(expr)
                variant.append("expanded")
            else:
                variant.append("factored")
        bad_expr, what = _perturb_expr(expr, rng)
        if bad_expr is None:
            return None
        if "expanded" in variant:
            bad_expr = sympy.expand(bad_expr)
        style = _style(rng)
        good = _tex_expr(shown, rng, variant, style)
        bad = _tex_expr(bad_expr, rng, [], style)
        if good == bad:
            return None
    return HeldOut(
        module=module,
        question=question,
        reference=ref,
        kind=kind,
        variant="+".join(variant) if variant else "plain",
        ending=ending,
        correct_answer=good,
        correct_resp=_wrap(good, kind, ending, rng, pre),
        perturbed_answer=bad,
        perturbed_resp=_wrap(bad, kind, ending, rng, pre),
        perturbation=what,
    )


def generate(n: int, seed: int, modules: Sequence[str] = MODULES) -> list[HeldOut]:
    """n items, round-robin over `modules` (equal shares), deterministic for a seed."""
    import numpy as np
    from mathematics_dataset import generate_settings
    from sympy.core import random as sympy_random

    flat = _load_modules()
    missing = [m for m in modules if m not in flat]
    if missing:
        raise SystemExit(f"unknown mathematics_dataset modules: {missing}")
    random.seed(seed)  # the generator draws from the global random, np.random and (randprime)
    np.random.seed(seed % 2**32)  # sympy's own generator
    sympy_random.seed(seed)
    rng = random.Random(f"heldout-{seed}")
    items: list[HeldOut] = []
    for i in range(n):
        module = modules[i % len(modules)]
        for _ in range(200):
            problem = flat[module]()
            q, a = str(problem.question), str(problem.answer)
            if (
                len(q) > generate_settings.MAX_QUESTION_LENGTH
                or len(a) > generate_settings.MAX_ANSWER_LENGTH
            ):
                continue
            item = _make_item(module, q, a, rng)
            if item is not None:
                items.append(item)
                break
        else:
            raise RuntimeError(f"{module}: no usable item in 200 draws")
    return items


# --------------------------------------------------------------------------------------------
# grading


@dataclass
class Run:
    name: str
    seconds: float
    correct: list[bool]  # verdicts on the correct responses
    perturbed: list[bool]  # verdicts on the perturbed responses
    ans_c: list[str | None]
    ans_p: list[str | None]
    err_c: list[str | None]
    err_p: list[str | None]

    def accuracy(self) -> float:
        return sum(self.correct) / len(self.correct) if self.correct else 0.0

    def fp(self) -> int:
        return sum(self.perturbed)

    def score(self) -> float:
        return self.accuracy() - self.fp() / max(1, len(self.perturbed))


def run_ours(items: Sequence[HeldOut], workers: int, timeout: float) -> Run:
    from dartmath.grading.grader import Grader

    pairs = [(it.reference, it.correct_resp) for it in items]
    pairs += [(it.reference, it.perturbed_resp) for it in items]
    with Grader(workers=workers, timeout=timeout) as g:
        list(g.grade_many([("\\frac{1}{2}", "The answer is $0.5$."), ("3", "\\boxed{3}")]))
        t0 = time.perf_counter()
        v = list(g.grade_many(pairs))
        dt = time.perf_counter() - t0
    n = len(items)
    if len(v) != 2 * n:
        raise RuntimeError(f"Grader returned {len(v)} verdicts for {2 * n} items")
    return Run(
        f"dartmath w={workers}",
        dt,
        [bool(x.correct) for x in v[:n]],
        [bool(x.correct) for x in v[n:]],
        [x.ans for x in v[:n]],
        [x.ans for x in v[n:]],
        [x.error for x in v[:n]],
        [x.error for x in v[n:]],
    )


def _mv_pred(parsed: list) -> str | None:
    if not parsed:
        return None
    return str(parsed[-1]) if isinstance(parsed[-1], str) else str(parsed[0])


def run_math_verify(items: Sequence[HeldOut], dollars: bool) -> Run:
    from math_verify import parse, verify

    verify(parse("$\\frac{1}{2}$"), parse("The answer is $0.5$."))
    out: dict[str, list] = {"c": [], "p": [], "ac": [], "ap": [], "ec": [], "ep": []}
    t0 = time.perf_counter()
    for it in items:
        gold = parse(f"${it.reference}$" if dollars else it.reference)
        for key, resp in (("c", it.correct_resp), ("p", it.perturbed_resp)):
            try:
                p = parse(resp)
                ok, err = bool(verify(gold, p)), None
            except Exception as e:  # math-verify swallows most errors itself; count any others
                p, ok, err = [], False, f"{type(e).__name__}: {e}"
            out[key].append(ok)
            out["a" + key].append(_mv_pred(p))
            out["e" + key].append(err if gold else (err or "gold parsed to nothing"))
    dt = time.perf_counter() - t0
    name = 'math-verify "$"+gold+"$"' if dollars else "math-verify gold"
    return Run(name, dt, out["c"], out["p"], out["ac"], out["ap"], out["ec"], out["ep"])


# --------------------------------------------------------------------------------------------
# reporting


def _short(s: str | None, n: int) -> str:
    if s is None:
        return "None"
    s = s.replace("\n", " ")
    return s if len(s) <= n else s[: n - 3] + "..."


def _pct(k: int, n: int) -> str:
    return f"{k / n:6.1%}" if n else "    - "


def _table(title: str, key: Callable[[HeldOut], str], items, ours: Run, mv: Run) -> None:
    groups: dict[str, list[int]] = collections.defaultdict(list)
    for i, it in enumerate(items):
        groups[key(it)].append(i)
    w = max(24, *(len(k) for k in groups))
    print(f"\n{title:<{w}} {'n':>5} | {'accuracy (correct items)':^26} | "
          f"{'false positives (perturbed)':^33}")  # fmt: skip
    print(f"{'':<{w}} {'':>5} | {'dartmath':>12} {'math-verify':>12} | "
          f"{'dartmath':>16} {'math-verify':>16}")  # fmt: skip
    for k in sorted(groups):
        idx = groups[k]
        n = len(idx)
        oc, mc = sum(ours.correct[i] for i in idx), sum(mv.correct[i] for i in idx)
        op, mp = sum(ours.perturbed[i] for i in idx), sum(mv.perturbed[i] for i in idx)
        print(
            f"{k:<{w}} {n:>5} | {_pct(oc, n):>12} {_pct(mc, n):>12} | "
            f"{op:>6} ({_pct(op, n)}) {mp:>7} ({_pct(mp, n)})"
        )


def _examples(items, run: Run, which: str, n_examples: int) -> None:
    if which == "missed":
        idx = [i for i, ok in enumerate(run.correct) if not ok]
        label = "correct responses graded wrong"
        ans, err, written = run.ans_c, run.err_c, "correct_answer"
    else:
        idx = [i for i, ok in enumerate(run.perturbed) if ok]
        label = "perturbed responses graded correct (false positives)"
        ans, err, written = run.ans_p, run.err_p, "perturbed_answer"
    print(f"\n  {run.name}: {len(idx)} {label}")
    if not idx:
        return
    # round-robin over modules so that one module does not fill the list
    by_mod: dict[str, list[int]] = collections.defaultdict(list)
    for i in idx:
        by_mod[items[i].module].append(i)
    picks: list[int] = []
    while len(picks) < n_examples and any(by_mod.values()):
        for m in sorted(by_mod):
            if by_mod[m] and len(picks) < n_examples:
                picks.append(by_mod[m].pop(0))
    print(f"    {'module':<34} {'reference':<30} {'written (LaTeX)':<34} {'extracted':<26} ending")
    for i in picks:
        it = items[i]
        print(
            f"    {it.module:<34} {_short(it.reference, 30):<30} "
            f"{_short(getattr(it, written), 34):<34} {_short(ans[i], 26):<26} {it.ending}"
            + (f"  ({_short(err[i], 60)})" if err[i] else "")
        )


def _errors(run: Run) -> str:
    c = collections.Counter(
        (e if e in ("no_answer", "timeout") else e.split(":")[0] + ": ...")
        for e in run.err_c + run.err_p
        if e
    )
    return ", ".join(f"{k} {v}" for k, v in c.most_common()) or "none"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="200 items: a smoke check under ~60 s")
    ap.add_argument("-n", "--items", type=int, default=None, help="items (default 2000; quick 200)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="dartmath Grader workers (default 2)")
    ap.add_argument("--timeout", type=float, default=5.0, help="Grader per-item timeout (s)")
    ap.add_argument("--examples", type=int, default=10, help="examples of each kind of miss")
    ap.add_argument("--modules", default=None, help="comma-separated subset of the modules")
    ap.add_argument("--dump", default=None, help="write the items (and verdicts) to this JSONL")
    args = ap.parse_args(argv)
    n = args.items if args.items is not None else (200 if args.quick else 2000)
    modules = args.modules.split(",") if args.modules else MODULES

    t0 = time.perf_counter()
    items = generate(n, args.seed, modules)
    kinds = collections.Counter(it.kind for it in items)
    print(
        f"generated {len(items)} items from {len(modules)} mathematics_dataset modules in "
        f"{time.perf_counter() - t0:.1f} s (seed {args.seed}; "
        + ", ".join(f"{k} {v}" for k, v in kinds.most_common())
        + f"); cpu cores: {os.cpu_count()}",
        flush=True,
    )

    mvs = []
    for dollars in (False, True):
        mvs.append(run_math_verify(items, dollars))
        print(f"  {mvs[-1].name}: {mvs[-1].seconds:.1f} s", flush=True)
    mv = max(mvs, key=lambda r: (r.score(), -r.fp()))
    other = mvs[1] if mv is mvs[0] else mvs[0]

    try:
        import dartmath.grading.grader  # noqa: F401

        ours: Run | None = run_ours(items, args.workers, args.timeout)
        print(f"  {ours.name}: {ours.seconds:.1f} s", flush=True)
    except ImportError as e:
        print(f"NOTE: dartmath.grading.grader is not importable ({e}); math-verify only.")
        ours = None

    if args.dump:
        with open(args.dump, "wb") as f:
            for i, it in enumerate(items):
                it.verdicts = {
                    mv.name: [mv.correct[i], mv.perturbed[i]],
                    other.name: [other.correct[i], other.perturbed[i]],
                }
                if ours:
                    it.verdicts["dartmath"] = [ours.correct[i], ours.perturbed[i]]
                    it.verdicts["dartmath_ans"] = [ours.ans_c[i], ours.ans_p[i]]
                f.write(orjson.dumps(asdict(it), option=orjson.OPT_APPEND_NEWLINE))
        print(f"wrote {len(items)} items to {args.dump}")

    n_items = len(items)
    print("\n" + "=" * 100)
    print(f"{n_items} items, each with a correct and a perturbed response; verdicts: "
          "[correct responses graded correct] / [perturbed responses graded correct]")  # fmt: skip
    print(f"{'grader':<28} {'accuracy':>10} {'false positives':>20} {'seconds':>8}  errors")
    for r in [*(x for x in [ours] if x), mv, other]:
        tag = "  (baseline)" if r is mv else ("  (not used)" if r is other else "")
        print(
            f"{r.name:<28} {r.accuracy():>10.2%} {r.fp():>8} ({r.fp() / n_items:>8.2%}) "
            f"{r.seconds:>8.1f}  {_errors(r)}{tag}"
        )
    print(
        f"math-verify baseline: the way of parsing the gold with the higher accuracy minus "
        f"false-positive share in this run ({mv.name}: {mv.score():.4f}; "
        f"{other.name}: {other.score():.4f})"
    )
    if ours is None:
        print("=" * 100)
        return 1
    print(
        f"dartmath / math-verify: accuracy ratio {ours.accuracy() / max(mv.accuracy(), 1e-9):.3f}, "
        f"false positives {ours.fp()} vs {mv.fp()}"
    )
    _table("module", lambda it: it.module, items, ours, mv)
    _table("kind", lambda it: it.kind, items, ours, mv)
    _table("ending", lambda it: it.ending, items, ours, mv)
    variants = collections.Counter(
        v for it in items for v in it.variant.split("+") if it.kind == "expression"
    )
    print(f"\nrenderings of expressions: {dict(variants.most_common())}")
    print("\nexamples (round-robin over modules):")
    for r in (ours, mv):
        _examples(items, r, "missed", args.examples)
        _examples(items, r, "fp", args.examples)

    goals = [
        (f"dartmath accuracy on correct items >= {GOAL_ACCURACY:.1%}",
         ours.accuracy() >= GOAL_ACCURACY, f"{ours.accuracy():.2%}"),
        ("dartmath false positives = 0", ours.fp() == 0, str(ours.fp())),
        ("dartmath false positives <= math-verify's", ours.fp() <= mv.fp(),
         f"{ours.fp()} vs {mv.fp()}"),
    ]  # fmt: skip
    print("\n" + "=" * 100)
    for text, ok, got in goals:
        print(f"goal: {text:<48} {got:>16}  {'PASS' if ok else 'FAIL'}")
    if args.quick:
        print("--quick: too few items for these figures to mean much; run without it.")
    return 0 if all(ok for _, ok, _ in goals) else 1


if __name__ == "__main__":
    if os.environ.get("PYTHONHASHSEED") != "0":  # the generator's set order: see the docstring
        os.execve(
            sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"}
        )
    sys.exit(main())
