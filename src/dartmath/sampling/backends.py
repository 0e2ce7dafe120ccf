"""Building the sampler a run config asks for (`backend.name`): the vLLM engine in this process,
or a fleet of OpenAI-compatible servers. Everything a user can get wrong about a backend
(a missing extra, an endpoints file, an API key variable) is checked by `check_backend` before
any query is loaded or any engine starts."""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dartmath.errors import ConfigError, InputError, require
from dartmath.sampling.base import Sampler
from dartmath.sampling.event_loop import PacedEventLoop
from dartmath.sampling.prompts import PromptTemplate

if TYPE_CHECKING:
    from dartmath.synth.config import SynthConfig


def check_backend(cfg: SynthConfig, template: PromptTemplate) -> None:
    """The backend's packages are installed and its inputs are usable (DartError if not)."""
    if cfg.backend.name == "openai":
        require("aiohttp", "the openai backend", ("openai",))
        if template.use_chat_template:
            require("transformers", "the chat template with the openai backend", ("openai",))
        endpoint_list(cfg)
        api_key(cfg)
    else:
        require("vllm", "the in-process vLLM backend (backend vllm)", ("gpu", "cpu"))


def event_loop_factory(cfg: SynthConfig) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop a run on this backend goes on (None: asyncio's own). The `openai`
    backend's client is woken by every piece of every streamed answer; on a loop that looks at
    its sockets at most every `backend.poll_interval` seconds when idle, the pieces that arrive
    together cost one wake-up (`event_loop.PacedSelector`; docs/DESIGN.md, Scaling out). The
    in-process engine stays on asyncio's own loop, on which its throughput is measured
    (bench_engine_utilisation.py)."""
    if cfg.backend.name != "openai" or cfg.backend.poll_interval == 0:
        return None
    return functools.partial(PacedEventLoop, cfg.backend.poll_interval)


def sampling_params(cfg: SynthConfig, template: PromptTemplate) -> dict[str, Any]:
    """The sampling settings both backends send: the template's stops first, then the config's."""
    return {
        "temperature": cfg.sampling.temperature,
        "top_p": cfg.sampling.top_p,
        "max_tokens": cfg.sampling.max_tokens,
        "stop": list(dict.fromkeys([*template.stop, *cfg.sampling.stop])) or None,
    }


async def start_sampler(cfg: SynthConfig, template: PromptTemplate) -> Sampler:
    """The sampler `backend.name` asks for."""
    if cfg.backend.name == "openai":
        return await start_openai(cfg, template)
    return await start_vllm(cfg, template)


def endpoint_list(cfg: SynthConfig) -> list[str]:
    """`backend.endpoints` followed by those of `backend.endpoints_file` (one URL a line,
    `#` comments)."""
    urls = list(cfg.backend.endpoints)
    if cfg.backend.endpoints_file:
        urls += read_endpoints_file(cfg.backend.endpoints_file)
    return urls


def read_endpoints_file(path: str) -> list[str]:
    """One endpoint per line; blank lines and `#` comments are skipped."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError as e:
        raise InputError(path, None, f"cannot read the endpoints file: {e.strerror}") from None
    urls = [text for line in lines if (text := line.split("#", 1)[0].strip())]
    if not urls:
        raise InputError(path, None, "no endpoints listed (backend.endpoints_file)")
    return urls


def api_key(cfg: SynthConfig) -> str | None:
    """The servers' API key, from the environment variable `backend.api_key_env` names."""
    name = cfg.backend.api_key_env
    if name is None:
        return None
    key = os.environ.get(name)
    if not key:
        raise ConfigError(f"backend.api_key_env: the environment variable {name} is not set")
    return key


async def start_openai(cfg: SynthConfig, template: PromptTemplate) -> Sampler:
    """A fleet of OpenAI-compatible servers; the prompt is rendered here, as in-process."""
    from dartmath.sampling.models import resolve_model
    from dartmath.sampling.openai_http import HTTPOptions, OpenAISampler

    b = cfg.backend
    options = HTTPOptions(
        served_model_name=b.served_model_name,
        api_key=api_key(cfg),
        limit_per_endpoint=b.max_inflight_per_endpoint,
        connect_timeout=b.connect_timeout,
        request_timeout=b.request_timeout,
        idle_timeout=b.idle_timeout,
        stream_interval=b.stream_interval,
        startup_timeout=b.startup_timeout,
        request_seed=b.request_seed,
        extra_body=dict(b.extra_body),
    )
    tokenizer_source = None
    if template.use_chat_template:
        tokenizer_source = b.tokenizer or resolve_model(cfg.model)
    return await OpenAISampler.start(
        endpoint_list(cfg),
        sampling_params(cfg, template),
        options,
        add_special_tokens=not template.use_chat_template,  # a chat template brings its own
        tokenizer_source=tokenizer_source,
        capacity=cfg.run.max_inflight,
    )


async def start_vllm(cfg: SynthConfig, template: PromptTemplate) -> Sampler:
    """The default sampler: vLLM in this process (GPU build or CPU build)."""
    from dartmath.sampling.models import resolve_model
    from dartmath.sampling.vllm_engine import VLLMSampler

    engine = dict(cfg.engine)
    # vLLM seeds its sampler with 0 by default: a resumed session would draw the samples of
    # the first session again. Unless the config fixes a seed, each session gets its own.
    engine.setdefault("seed", secrets.randbits(31))
    return await VLLMSampler.start(
        resolve_model(cfg.model),
        engine,
        sampling_params(cfg, template),
        add_special_tokens=not template.use_chat_template,  # a chat template brings its own
        capacity=cfg.run.max_inflight,
    )
