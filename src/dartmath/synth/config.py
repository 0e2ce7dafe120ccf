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
from dartmath.synth.strategies import PARAMS, StrategySpec, check_limits


@dataclass
class QueriesConfig:
    source: str | None = None
    preset: str | None = None
    config: str | None = None
    split: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    limit: int | None = None


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
    difficulty_from: str | None = None
    n_vrt: int | None = None
    max_raw: int | None = None
    budget: int | None = None


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
    startup_timeout: float = 600.0
    request_seed: bool = False  # see HTTPOptions.request_seed
    extra_body: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunConfig:
    dir: str | None = None
    max_inflight: int | None = None  # samples in flight (default: from the backend's capacity)
    log_every: float = 30.0  # seconds between progress lines when stderr is not a terminal


@dataclass
class SynthConfig:
    """The whole run config; `engine` is passed through to vLLM's AsyncEngineArgs as is."""

    model: str = "embedded:smollm2-135m"
    queries: QueriesConfig = field(default_factory=QueriesConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    engine: dict[str, Any] = field(default_factory=dict)
    backend: BackendConfig = field(default_factory=BackendConfig)
    grader: GraderConfig = field(default_factory=GraderConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

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
        if cls is not None:
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
    "strategy.difficulty_from": (str,),
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
    "backend.startup_timeout": (int, float),
    "backend.request_seed": (bool,),
    "backend.extra_body": (dict,),
    "grader.workers": (int,),
    "grader.timeout": (int, float),
    "run.dir": (str,),
    "run.max_inflight": (int,),
    "run.log_every": (int, float),
}
_NULLABLE = {
    "queries.source",
    "queries.preset",
    "queries.config",
    "queries.split",
    "queries.limit",
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
}


def _check_types(cfg: SynthConfig, origin: str) -> None:
    data = cfg.to_dict()
    for key, types in _TYPES.items():
        value: Any = data
        for part in key.split("."):
            value = value[part]
        if value is None and key in _NULLABLE:
            continue
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            names = " or ".join(t.__name__ for t in types)
            raise ConfigError(f"{origin}: `{key}` must be {names}, got {value!r}")
    positive = ["sampling.max_tokens", "grader.workers", "strategy.max_raw", "strategy.budget"]
    positive += ["run.max_inflight", "queries.limit", "backend.max_inflight_per_endpoint"]
    for key in positive:
        section, name = key.split(".")
        value = data[section][name]
        if value is not None and value < 1:
            raise ConfigError(f"{origin}: `{key}` must be at least 1, got {value}")
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
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override {key}: `{part}` is not a section")
        node = child
    node[parts[-1]] = value


def load_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> SynthConfig:
    """Read a YAML config (or the defaults), apply dotted-key overrides, validate."""
    return resolve_config(path, overrides)[0]


# The strategy section's keys that belong to one strategy (the others are shared: caps).
_STRATEGY_KEYS = {
    name: (*params, *(("difficulty_from",) if name == "prop2diff" else ()))
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
    if cfg.queries.source is None:
        raise ConfigError(f"{origin}: `queries.source` is required (a file or a datasets name)")
    if cfg.run.dir is None:
        raise ConfigError(f"{origin}: `run.dir` is required (where the run's files go)")
    s = cfg.strategy
    try:
        spec = cfg.strategy_spec()
        check_limits(
            spec, max_raw=s.max_raw, budget=s.budget, has_prior=s.difficulty_from is not None
        )
    except ValueError as e:
        raise ConfigError(f"{origin}: strategy: {e}") from None
    return cfg, notes


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
    its meaning (model, queries, prompt, sampling, strategy)."""
    diffs: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                walk(a.get(k), b.get(k), f"{path}.{k}" if path else k)
        elif a != b:
            diffs.append(f"{path}: {a!r} -> {b!r}")

    for key in MEANING_KEYS:
        walk(old.get(key), new.get(key), key)
    return diffs
