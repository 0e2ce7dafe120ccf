"""Run config: defaults, YAML, overrides, and errors that name the file and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dartmath.errors import ConfigError
from dartmath.synth.config import load_config, meaning_diff, parse_override, resolve_config
from dartmath.synth.strategies import StrategySpec

BASE = {
    "queries.source": "q.jsonl",
    "run.dir": "runs/x",
    "strategy.k_p": 4,
    "strategy.n_probe": 2,
    "strategy.max_raw": 8,
}


def test_defaults_and_overrides():
    cfg = load_config(None, BASE)
    assert cfg.strategy.name == "prop2diff" and cfg.strategy.k_p == 4
    assert cfg.model == "embedded:smollm2-135m"
    cfg2 = load_config(None, {**BASE, "sampling.temperature": 0.5, "engine.max_num_seqs": 8})
    assert cfg2.sampling.temperature == 0.5 and cfg2.engine == {"max_num_seqs": 8}


def test_yaml_file_then_overrides_win(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(
        "queries: {source: a.jsonl}\nrun: {dir: r}\n"
        "strategy: {name: uniform, k_u: 3, max_raw: 9}\nsampling: {max_tokens: 64}\n"
    )
    cfg = load_config(p, {"strategy.k_u": 5})
    assert cfg.strategy.name == "uniform" and cfg.strategy.k_u == 5
    assert cfg.sampling.max_tokens == 64


@pytest.mark.parametrize(
    "text,needle",
    [
        ("queries: {source: a}\nrun: {dir: r}\nsampling: {temprature: 1}\n", "sampling.temprature"),
        (
            "queries: {source: a}\nrun: {dir: r}\nsampling: {max_tokens: -3}\n",
            "sampling.max_tokens",
        ),
        ("queries: {source: a}\nrun: {dir: r}\nsampling: {top_p: 'x'}\n", "sampling.top_p"),
        ("queries: {source: a}\nrun: {dir: r}\nstrategy: {name: uniform}\n", "k_u"),
        ("queries: {source: a}\nrun: {dir: r}\nstrategy: {name: magic}\n", "magic"),
        ("run: {dir: r}\n", "queries.source"),
        ("queries: [1, 2]\n", "queries"),
        ("- just a list\n", "mapping"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, text, needle):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(p) in str(e.value) and needle in str(e.value)


def test_parse_override_reads_yaml_values():
    assert parse_override("strategy.k_p=8") == ("strategy.k_p", 8)
    assert parse_override("sampling.stop=['a', 'b']") == ("sampling.stop", ["a", "b"])
    assert parse_override("strategy.budget=null") == ("strategy.budget", None)
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("strategy.k_p")


def test_meaning_diff_ignores_engine_and_grader():
    a = load_config(None, BASE).to_dict()
    b = load_config(None, {**BASE, "engine.max_num_seqs": 4, "grader.workers": 2}).to_dict()
    assert meaning_diff(a, b) == []
    c = load_config(None, {**BASE, "sampling.temperature": 0.3}).to_dict()
    assert meaning_diff(a, c) == ["sampling.temperature: 1.0 -> 0.3"]


@pytest.mark.parametrize(
    "extra,needle",
    [
        ({"backend.name": "openai"}, "needs `backend.endpoints`"),
        ({"backend.endpoints": ["http://h:8000"]}, "add --backend openai"),
        ({"backend.name": "grpc"}, "must be vllm or openai"),
        ({"backend.name": "openai", "backend.endpoints": "http://h:8000"}, "must be list"),
        (
            {"backend.name": "openai", "backend.endpoints": ["h:1"], "backend.request_timeout": 0},
            "backend.request_timeout",
        ),
        ({"backend.request_seed": 1}, "backend.request_seed"),
        ({"backend.idle_timeout": 0}, "`backend.idle_timeout` must be > 0 seconds (null: no"),
        ({"backend.idle_timeout": "30s"}, "backend.idle_timeout"),
        ({"backend.stream_interval": 0}, "`backend.stream_interval` must be >= 1"),
        ({"backend.stream_interval": 1.5}, "backend.stream_interval"),
        ({"backend.poll_interval": -0.01}, "`backend.poll_interval` must be from 0 to 1 second"),
        ({"backend.poll_interval": 2}, "`backend.poll_interval` must be from 0 to 1 second"),
        ({"backend.poll_interval": "50ms"}, "backend.poll_interval"),
    ],
)
def test_backend_errors_name_the_key(extra, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        load_config(None, {**BASE, **extra})


def test_stall_detection_is_on_by_default_and_null_turns_it_off():
    cfg = load_config(None, BASE)
    assert cfg.backend.idle_timeout == 30.0 and cfg.backend.stream_interval == 16
    assert load_config(None, {**BASE, "backend.idle_timeout": None}).backend.idle_timeout is None


def test_backend_is_not_part_of_a_runs_meaning():
    a = load_config(None, BASE).to_dict()
    b = load_config(
        None, {**BASE, "backend.name": "openai", "backend.endpoints": ["http://h:8000"]}
    ).to_dict()
    assert b["backend"]["endpoints"] == ["http://h:8000"]
    assert meaning_diff(a, b) == []


SHIPPED = [
    "dart-math-hard.yaml",
    "dart-math-uniform.yaml",
    "gpu-node-8x.yaml",
    "multi-node-ray.yaml",
    "fleet-servers.yaml",
    "cpu-demo.yaml",
]


@pytest.mark.parametrize("name", SHIPPED)
def test_example_configs_load_and_their_engine_options_are_vllms(name, tmp_path):
    """Every `engine:` key of the shipped configs is an AsyncEngineArgs field (real vLLM
    class, no engine started): the parallelism options pass through as written. The model
    is a local folder: AsyncEngineArgs looks a hub name up, and tests reach no hub."""
    import dataclasses
    from pathlib import Path

    pytest.importorskip("vllm")
    from vllm.engine.arg_utils import AsyncEngineArgs

    root = Path(__file__).resolve().parents[1]
    cfg = load_config(root / "configs" / name)
    fields = {f.name for f in dataclasses.fields(AsyncEngineArgs)}
    assert set(cfg.engine) <= fields, set(cfg.engine) - fields
    args = AsyncEngineArgs(model=str(tmp_path), **cfg.engine)
    for key, value in cfg.engine.items():
        assert getattr(args, key) == value


def test_strategy_chosen_on_the_command_line_sets_the_file_s_other_keys_aside():
    """The demo config is written for Prop2Diff (k_p, n_probe): `--strategy uniform --k-u 8`
    over it runs Uniform and says which keys it set aside."""
    demo = Path(__file__).parent.parent / "configs" / "cpu-demo.yaml"
    cfg, notes = resolve_config(demo, {"strategy.name": "uniform", "strategy.k_u": 8})
    assert cfg.strategy_spec() == StrategySpec.uniform(8)
    assert cfg.strategy.max_raw == 8  # shared keys stay
    assert notes == [
        f"strategy uniform chosen on the command line: set aside strategy.k_p, "
        f"strategy.n_probe from {demo}"
    ]
    cfg, notes = resolve_config(demo, {"strategy.name": "vrt", "strategy.n_vrt": 2})
    assert cfg.strategy_spec() == StrategySpec.vrt(2) and len(notes) == 1
    # the same strategy as the file's, or keys given on the command line: nothing set aside
    assert resolve_config(demo, {"strategy.name": "prop2diff"})[1] == []
    with pytest.raises(ConfigError, match="k_p does not apply to strategy 'uniform'"):
        load_config(demo, {"strategy.name": "uniform", "strategy.k_u": 8, "strategy.k_p": 3})


@pytest.mark.parametrize(
    ("strategy", "needle"),
    [
        ({"strategy.name": "uniform", "strategy.k_u": 2}, "needs max_raw or budget"),
        ({"strategy.k_p": 2, "strategy.max_raw": 9}, "needs a difficulty"),
        ({"strategy.k_p": 2, "strategy.n_probe": 9, "strategy.max_raw": 4}, "max_raw (4)"),
    ],
)
def test_a_strategy_that_could_never_end_is_refused_when_the_config_loads(strategy, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        load_config(None, {"queries.source": "q.jsonl", "run.dir": "r", **strategy})


def test_the_dart_math_configs_run_both_sets_uncapped_as_released():
    """DART-Math-Hard and -Uniform: one run over MATH and GSM8K-fix, no per-query cap (a run
    budget instead), the first k correct in submission order; Hard reads both published priors.
    The node/cluster/fleet variants of Hard have the same meaning, so a run resumes under any."""
    root = Path(__file__).resolve().parents[1] / "configs"
    hard = load_config(root / "dart-math-hard.yaml")
    uniform = load_config(root / "dart-math-uniform.yaml")
    for cfg in (hard, uniform):
        sources = [(q.name, q.source, q.preset, q.split) for q in cfg.query_sources()]
        assert sources == [
            ("math", "data/MATH/train", "math", None),
            ("gsm8k", "hkust-nlp/gsm8k-fix", None, "train"),
        ]
        assert cfg.strategy.max_raw is None and cfg.strategy.budget is not None
        assert cfg.run.stop == "submission-order"
        assert cfg.prompt.template == "deepseekmath"
        assert (cfg.sampling.temperature, cfg.sampling.top_p, cfg.sampling.max_tokens) == (
            1.6,
            0.95,
            2048,
        )
    assert (uniform.strategy.name, uniform.strategy.k_u) == ("uniform", 40)
    assert (hard.strategy.name, hard.strategy.k_p) == ("prop2diff", 192)
    assert hard.strategy.difficulty_sources() == [
        "hkust-nlp/dart-math-pool-math-query-info",
        "hkust-nlp/dart-math-pool-gsm8k-query-info",
    ]
    for name in ("gpu-node-8x.yaml", "multi-node-ray.yaml", "fleet-servers.yaml"):
        other = load_config(root / name)
        assert meaning_diff(hard.to_dict(), other.to_dict()) == [], name
        assert other.run.dir == hard.run.dir


def test_the_openai_backend_runs_on_a_paced_loop_and_the_in_process_engine_on_asyncio():
    from dartmath.sampling.backends import event_loop_factory
    from dartmath.sampling.event_loop import PacedEventLoop, poll_interval

    openai = {**BASE, "backend.name": "openai", "backend.endpoints": ["h:1"]}
    fleet = load_config(None, openai)
    assert fleet.backend.poll_interval == 0.05
    loop = event_loop_factory(fleet)()
    try:
        assert isinstance(loop, PacedEventLoop) and poll_interval(loop) == 0.05
    finally:
        loop.close()
    assert event_loop_factory(load_config(None, BASE)) is None
    unpaced = load_config(None, {**openai, "backend.poll_interval": 0})
    assert event_loop_factory(unpaced) is None
