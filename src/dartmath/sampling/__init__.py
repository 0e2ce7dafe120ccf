"""Sampling: prompt templates, the embedded default model, and the backends that sample
completions (in-process vLLM today)."""
