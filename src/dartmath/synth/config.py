"""The run config of `dart synth`: YAML file + command-line overrides, validated into dataclasses.

Every key has a default here, so a config file only says what differs. Unknown keys are errors
(a typo must not silently fall back to a default), named with their dotted path and the file.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dartmath.errors import ConfigError
from dartmath.queries.priors import PRIOR_MATCH
from dartmath.synth.strategies import PARAMS, StrategySpec, check_limits


@dataclass
class QueriesConfig:
    """One source of queries; `name` labels its queries (default: the `source` string)."""

    source: str | None = None
    preset: str | None = None
    config: str | None = None
    split: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    limit: int | None = None
    name: str | None = None  # last: a config.yaml of one source reads as before plus `name: null`

    @property
    def label(self) -> str:
        """The source's name: `name`, or else the `source` string."""
        assert self.source is not None
        return self.name if self.name is not None else self.source


@dataclass
class PromptConfig:
    template: str = "chat"
    instruction: str | None = None


@dataclass
class SamplingConfig:
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 512
    stop: list[str] = field(default_factory=list)


@dataclass
class StrategyConfig:
    name: str = "prop2diff"
    k_u: int | None = None
    k_p: int | None = None
    n_probe: int | None = None
    difficulty_from: str | list[str] | None = None  # one prior (file, folder, hub name) or several
    n_vrt: int | None = None
    max_raw: int | None = None
    budget: int | None = None
    prior_match: str = "auto"  # one of PRIOR_MATCH: how a run query finds its prior row

    def difficulty_sources(self) -> list[str]:
        """The priors `difficulty_from` names, as a list (empty without a prior)."""
        d = self.difficulty_from
        return [] if d is None else [d] if isinstance(d, str) else list(d)


@dataclass
class GraderConfig:
    workers: int = 1
    timeout: float = 5.0


@dataclass
class BackendConfig:
    """Where samples come from: `vllm` (the engine in this process) or `openai` (a fleet of
    OpenAI-compatible servers: vLLM's, SGLang's, ...)."""

    name: str = "vllm"
    endpoints: list[str] = field(default_factory=list)
    endpoints_file: str | None = None  # one URL per line, `#` comments
    served_model_name: str | None = None  # default: the one model the servers serve
    api_key_env: str | None = None  # the environment variable holding the API key
    tokenizer: str | None = None  # for the `chat` template; default: `model`
    max_inflight_per_endpoint: int = 256  # samples; above the server's max_num_seqs
    connect_timeout: float = 10.0
    request_timeout: float = 1800.0
    idle_timeout: float | None = 30.0  # a server holding samples, silent this long: stalled
    stream_interval: int = 16  # tokens per streamed delta (vLLM's `stream_interval`)
    poll_interval: float = 0.05  # seconds an idle client gathers arrivals before waking
    startup_timeout: float = 600.0
    request_seed: bool = False  # see HTTPOptions.request_seed
    extra_body: dict[str, Any] = field(default_factory=dict)


# The values of `run.stop`, the pipeline's stop rule; `run` is not a meaning section.
RUN_STOPS = ("submission-order", "first-finished")


@dataclass
class RunConfig:
    dir: str | None = None
    max_inflight: int | None = None  # samples in flight (default: from the backend's capacity)
    log_every: float = 30.0  # seconds between progress lines when stderr is not a terminal
    stop: str = "submission-order"  # one of RUN_STOPS


@dataclass
class SynthConfig:
    """The whole run config; `engine` is passed through to vLLM's AsyncEngineArgs as is."""

    model: str = "embedded:smollm2-135m"
    # One source (a mapping, as written by every version) or a list of sources.
    queries: QueriesConfig | list[QueriesConfig] = field(default_factory=QueriesConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    engine: dict[str, Any] = field(default_factory=dict)
    backend: BackendConfig = field(default_factory=BackendConfig)
    grader: GraderConfig = field(default_factory=GraderConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def query_sources(self) -> list[QueriesConfig]:
        """The run's sources of queries, in config order (one for the mapping form)."""
        return self.queries if isinstance(self.queries, list) else [self.queries]

    def strategy_spec(self) -> StrategySpec:
        s = self.strategy
        return StrategySpec(name=s.name, k_u=s.k_u, k_p=s.k_p, n_probe=s.n_probe, n_vrt=s.n_vrt)


# Sections whose values decide what a run's pool means: resuming with other values is refused.
MEANING_KEYS = ("model", "queries", "prompt", "sampling", "strategy")


_SECTIONS: dict[str, type] = {
    "queries": QueriesConfig,
    "prompt": PromptConfig,
    "sampling": SamplingConfig,
    "strategy": StrategyConfig,
    "backend": BackendConfig,
    "grader": GraderConfig,
    "run": RunConfig,
}


def _check_keys(data: Any, cls: type, where: str, origin: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: `{where or 'config'}` must be a mapping, got {data!r}")
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"{origin}: unknown key(s) {', '.join(prefix + str(k) for k in unknown)}; "
            f"known: {', '.join(prefix + k for k in known)}"
        )
    return data


def _build(data: dict[str, Any], origin: str) -> SynthConfig:
    kwargs: dict[str, Any] = {}
    for name, value in _check_keys(data, SynthConfig, "", origin).items():
        cls = _SECTIONS.get(name)
        if name == "queries" and isinstance(value, list):
            if not value:
                raise ConfigError(
                    f"{origin}: `queries` is an empty list (give at least one source)"
                )
            kwargs[name] = [
                QueriesConfig(**_check_keys(v, QueriesConfig, f"queries.{i}", origin))
                for i, v in enumerate(value)
            ]
        elif cls is not None:
            kwargs[name] = cls(**_check_keys(value, cls, name, origin))
        elif name == "engine":
            kwargs[name] = {} if value is None else value
        else:
            kwargs[name] = value
    return SynthConfig(**kwargs)


# Expected scalar types per dotted key (None always allowed where the default is None).
_TYPES: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "queries.source": (str,),
    "queries.preset": (str,),
    "queries.config": (str,),
    "queries.split": (str,),
    "queries.fields": (dict,),
    "queries.limit": (int,),
    "queries.name": (str,),
    "prompt.template": (str,),
    "prompt.instruction": (str,),
    "sampling.temperature": (int, float),
    "sampling.top_p": (int, float),
    "sampling.max_tokens": (int,),
    "sampling.stop": (list,),
    "strategy.name": (str,),
    "strategy.k_u": (int,),
    "strategy.k_p": (int,),
    "strategy.n_probe": (int,),
    "strategy.difficulty_from": (str, list),
    "strategy.prior_match": (str,),
    "strategy.n_vrt": (int,),
    "strategy.max_raw": (int,),
    "strategy.budget": (int,),
    "engine": (dict,),
    "backend.name": (str,),
    "backend.endpoints": (list,),
    "backend.endpoints_file": (str,),
    "backend.served_model_name": (str,),
    "backend.api_key_env": (str,),
    "backend.tokenizer": (str,),
    "backend.max_inflight_per_endpoint": (int,),
    "backend.connect_timeout": (int, float),
    "backend.request_timeout": (int, float),
    "backend.idle_timeout": (int, float),
    "backend.stream_interval": (int,),
    "backend.poll_interval": (int, float),
    "backend.startup_timeout": (int, float),
    "backend.request_seed": (bool,),
    "backend.extra_body": (dict,),
    "grader.workers": (int,),
    "grader.timeout": (int, float),
    "run.dir": (str,),
    "run.max_inflight": (int,),
    "run.log_every": (int, float),
    "run.stop": (str,),
}
_NULLABLE = {
    "queries.source",
    "queries.preset",
    "queries.config",
    "queries.split",
    "queries.limit",
    "queries.name",
    "prompt.instruction",
    "strategy.k_u",
    "strategy.k_p",
    "strategy.n_probe",
    "strategy.difficulty_from",
    "strategy.n_vrt",
    "strategy.max_raw",
    "strategy.budget",
    "run.dir",
    "run.max_inflight",
    "backend.endpoints_file",
    "backend.served_model_name",
    "backend.api_key_env",
    "backend.tokenizer",
    "backend.idle_timeout",
}


def _values(data: dict[str, Any], key: str) -> list[tuple[str, Any]]:
    """(dotted key as the user writes it, value) of a `_TYPES` key: one per source of queries
    in the list form (`queries.1.limit`), else one."""
    section, _, name = key.partition(".")
    node = data[section]
    if section == "queries" and isinstance(node, list):
        return [(f"queries.{i}.{name}", q[name]) for i, q in enumerate(node)]
    return [(key, node[name] if name else node)]


def _check_types(cfg: SynthConfig, origin: str) -> None:
    data = cfg.to_dict()
    for key, types in _TYPES.items():
        for shown, value in _values(data, key):
            if value is None and key in _NULLABLE:
                continue
            if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
                names = " or ".join(t.__name__ for t in types)
                raise ConfigError(f"{origin}: `{shown}` must be {names}, got {value!r}")
    positive = ["sampling.max_tokens", "grader.workers", "strategy.max_raw", "strategy.budget"]
    positive += ["run.max_inflight", "queries.limit", "backend.max_inflight_per_endpoint"]
    for key in positive:
        for shown, value in _values(data, key):
            if value is not None and value < 1:
                raise ConfigError(f"{origin}: `{shown}` must be at least 1, got {value}")
    if data["run"]["stop"] not in RUN_STOPS:
        raise ConfigError(
            f"{origin}: `run.stop` must be {' or '.join(RUN_STOPS)}, got {data['run']['stop']!r}"
        )
    if not 0 < data["sampling"]["top_p"] <= 1:
        raise ConfigError(f"{origin}: `sampling.top_p` must be in (0, 1]")
    if data["sampling"]["temperature"] < 0:
        raise ConfigError(f"{origin}: `sampling.temperature` must be >= 0")
    if data["grader"]["timeout"] <= 0:
        raise ConfigError(f"{origin}: `grader.timeout` must be > 0")
    if data["run"]["log_every"] <= 0:
        raise ConfigError(f"{origin}: `run.log_every` must be > 0")
    _check_backend(data["backend"], origin)


def _check_backend(b: dict[str, Any], origin: str) -> None:
    if b["name"] not in ("vllm", "openai"):
        raise ConfigError(f"{origin}: `backend.name` must be vllm or openai, got {b['name']!r}")
    has_endpoints = bool(b["endpoints"]) or b["endpoints_file"] is not None
    if b["name"] == "vllm" and has_endpoints:
        raise ConfigError(
            f"{origin}: endpoints are given but `backend.name` is vllm (the in-process engine); "
            "add --backend openai to sample from the servers"
        )
    if b["name"] == "openai" and not has_endpoints:
        raise ConfigError(
            f"{origin}: backend openai needs `backend.endpoints` (--endpoint URL, repeatable) "
            "or `backend.endpoints_file` (--endpoints-file FILE)"
        )
    if not all(isinstance(u, str) and u.strip() for u in b["endpoints"]):
        raise ConfigError(f"{origin}: `backend.endpoints` must be a list of URLs")
    for key in ("connect_timeout", "request_timeout", "startup_timeout"):
        if b[key] < 0 or (key != "startup_timeout" and b[key] == 0):
            raise ConfigError(f"{origin}: `backend.{key}` must be > 0")
    if b["idle_timeout"] is not None and b["idle_timeout"] <= 0:
        raise ConfigError(
            f"{origin}: `backend.idle_timeout` must be > 0 seconds (null: no stall detection)"
        )
    if b["stream_interval"] < 1:
        raise ConfigError(f"{origin}: `backend.stream_interval` must be >= 1 (tokens)")
    if not 0 <= b["poll_interval"] <= 1:
        raise ConfigError(
            f"{origin}: `backend.poll_interval` must be from 0 to 1 second "
            "(0: wake up for every arrival)"
        )


def parse_override(text: str) -> tuple[str, Any]:
    """`strategy.k_p=8` → ("strategy.k_p", 8); the value is read as YAML (`null`, lists...)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. strategy.k_p=8")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"override {text!r}: value is not valid YAML: {e}") from None
    return key, value


def _apply(data: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted key; a number indexes a list (`queries.1.limit`: the second source's)."""
    parts = key.split(".")
    node: Any = data
    for depth, part in enumerate(parts):
        path = ".".join(parts[:depth])
        slot: str | int = part
        if isinstance(node, list):
            if not part.isdigit():
                raise ConfigError(
                    f"override {key}: `{path}` is a list: index it, e.g. {path}.0.{part}"
                )
            if int(part) >= len(node):
                raise ConfigError(
                    f"override {key}: `{path}` has {len(node)} entries (0 to {len(node) - 1})"
                )
            slot = int(part)
        elif not isinstance(node, dict):
            raise ConfigError(f"override {key}: `{path}` is not a section")
        elif part.isdigit():
            raise ConfigError(f"override {key}: `{path}` is not a list, so has no entry {part}")
        if depth == len(parts) - 1:
            node[slot] = copy.deepcopy(value)  # a later override must not edit the caller's
        else:
            if isinstance(node, dict) and node.get(part) is None:
                node[part] = {}
            node = node[slot]


def load_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> SynthConfig:
    """Read a YAML config (or the defaults), apply dotted-key overrides, validate."""
    return resolve_config(path, overrides)[0]


# The strategy section's keys that belong to one strategy (the others are shared: caps).
_STRATEGY_KEYS = {
    name: (*params, *(("difficulty_from", "prior_match") if name == "prop2diff" else ()))
    for name, params in PARAMS.items()
}


def resolve_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> tuple[SynthConfig, list[str]]:
    """`load_config`, and notes for the user: when the overrides choose another strategy than
    the file, the file's keys of its own strategy are set aside (named in a note) instead of
    failing as keys that do not apply."""
    origin = str(path) if path else "<defaults>"
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"{path}: cannot read the config: {e.strerror}") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the config must be a mapping of sections")
        data = copy.deepcopy(loaded or {})
    overrides = overrides or {}
    notes = _set_aside_other_strategy(data, overrides, origin)
    for key, value in overrides.items():
        _apply(data, key, value)
    if overrides:
        origin += " + command-line overrides"
    cfg = _build(data, origin)
    _check_types(cfg, origin)
    _check_sources(cfg, origin)
    if cfg.run.dir is None:
        raise ConfigError(f"{origin}: `run.dir` is required (where the run's files go)")
    s = cfg.strategy
    _check_prior(s, origin)
    try:
        spec = cfg.strategy_spec()
        check_limits(
            spec, max_raw=s.max_raw, budget=s.budget, has_prior=s.difficulty_from is not None
        )
    except ValueError as e:
        raise ConfigError(f"{origin}: strategy: {e}") from None
    return cfg, notes


def _check_prior(s: StrategyConfig, origin: str) -> None:
    """`difficulty_from` names each prior once, none empty; `prior_match` is a known rule."""
    if isinstance(s.difficulty_from, list) and not s.difficulty_from:
        raise ConfigError(
            f"{origin}: `strategy.difficulty_from` is an empty list: name a prior, or null for none"
        )
    seen: set[str] = set()
    for src in s.difficulty_sources():
        if not isinstance(src, str) or not src.strip():
            raise ConfigError(
                f"{origin}: `strategy.difficulty_from` must name priors (files, folders or "
                f"dataset names), got {src!r}"
            )
        if src in seen:
            raise ConfigError(f"{origin}: `strategy.difficulty_from` names {src!r} twice")
        seen.add(src)
    if s.prior_match not in PRIOR_MATCH:
        raise ConfigError(
            f"{origin}: `strategy.prior_match` must be {', '.join(PRIOR_MATCH)}, "
            f"got {s.prior_match!r}"
        )


def _check_sources(cfg: SynthConfig, origin: str) -> None:
    """Every source of queries has a `source`; their names are non-empty and unique."""
    many = isinstance(cfg.queries, list)
    seen: dict[str, str] = {}
    for i, q in enumerate(cfg.query_sources()):
        where = f"queries.{i}" if many else "queries"
        if q.source is None:
            raise ConfigError(f"{origin}: `{where}.source` is required (a file or a datasets name)")
        if q.name is not None and not q.name.strip():
            raise ConfigError(f"{origin}: `{where}.name` must not be empty")
        first = seen.setdefault(q.label, where)
        if first != where:
            raise ConfigError(
                f"{origin}: `{first}` and `{where}` are both named {q.label!r} (a source's name "
                "defaults to its `source`): give each a distinct `name`"
            )


def _set_aside_other_strategy(
    data: dict[str, Any], overrides: dict[str, Any], origin: str
) -> list[str]:
    """Drop the file's keys of another strategy than the one the overrides choose."""
    chosen = overrides.get("strategy.name")
    section = data.get("strategy")
    if not isinstance(chosen, str) or chosen not in _STRATEGY_KEYS or not isinstance(section, dict):
        return []
    if section.get("name", StrategyConfig.name) == chosen:
        return []
    dropped = [
        key
        for name, keys in _STRATEGY_KEYS.items()
        if name != chosen
        for key in keys
        if key not in _STRATEGY_KEYS[chosen]
        and section.get(key) is not None
        and f"strategy.{key}" not in overrides
    ]
    for key in dropped:
        del section[key]
    if not dropped:
        return []
    keys = ", ".join(f"strategy.{k}" for k in dict.fromkeys(dropped))
    return [f"strategy {chosen} chosen on the command line: set aside {keys} from {origin}"]


def meaning_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two configs in the sections that give a run
    its meaning (model, queries, prompt, sampling, strategy).

    A key missing on one side counts as None (so a key added later with a None default is no
    change); lists of sources of the same length are compared source by source
    (`queries.1.limit`), and a list of one source means what that source as a mapping means.
    """
    diffs: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                walk(a.get(k), b.get(k), f"{path}.{k}" if path else k)
        elif _mappings(a) and _mappings(b) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{path}.{i}")
        elif a != b:
            diffs.append(f"{path}: {a!r} -> {b!r}")

    for key in MEANING_KEYS:
        a, b = old.get(key), new.get(key)
        if key == "queries":
            a, b = _one_source(a), _one_source(b)
        elif key == "strategy":
            a, b = _strategy_meaning(a), _strategy_meaning(b)
        walk(a, b, key)
    return diffs


def _mappings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


def _one_source(queries: Any) -> Any:
    """A list of one source as that source's mapping; anything else as it is."""
    return queries[0] if _mappings(queries) and len(queries) == 1 else queries


def _strategy_meaning(strategy: Any) -> Any:
    """The strategy section as it bears on a run's meaning: `difficulty_from` of one prior is
    that prior (a list of one, or the string every earlier version wrote), of several their
    sorted list (the order of priors changes nothing); `prior_match` missing (a config written
    before it existed) is its default, and without a prior it means nothing and is left out."""
    if not isinstance(strategy, dict):
        return strategy
    s = dict(strategy)
    sources = s.get("difficulty_from")
    if isinstance(sources, list):
        s["difficulty_from"] = sources[0] if len(sources) == 1 else sorted(sources, key=str)
    if s.get("difficulty_from") is None:
        s.pop("prior_match", None)
    else:
        s.setdefault("prior_match", StrategyConfig.prior_match)
    return s
