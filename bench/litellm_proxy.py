"""The LiteLLM proxy as a reference, in its own virtual environment under bench/.work.

LiteLLM is not a dependency of Meshgate: the bench installs one pinned version into
``bench/.work/litellm-<version>`` the first time it runs (uv when the project venv has it,
pip otherwise) and starts ``litellm --config`` with one worker, a random master key, no
database, no callbacks, and the production settings its documentation advises (spend and
error logs off, quiet logging, the local model cost map so nothing is fetched at start).
1.107.0 was a compromised release and is avoided; newer releases than the pin need a newer
``certifi`` than the package index here serves.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from bench.mock_upstream import MODEL
from bench.procs import WORK, Proc, free_port

VERSION = "1.106.2"
VENV = WORK / f"litellm-{VERSION}"


def ensure_installed() -> Path:
    """The ``litellm`` executable of the pinned version, installed on first use."""
    exe = VENV / "bin" / "litellm"
    stamp = VENV / ".installed"
    if exe.exists() and stamp.exists():
        return exe
    print(f"bench: installing litellm[proxy]=={VERSION} into {VENV}", file=sys.stderr, flush=True)
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    python = VENV / "bin" / "python"
    uv = Path(sys.executable).parent / "uv"
    if uv.exists():
        cmd = [str(uv), "pip", "install", "-q", "--python", str(python)]
    else:
        cmd = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*cmd, f"litellm[proxy]=={VERSION}"], check=True, timeout=1200)
    stamp.touch()
    return exe


class LiteLLM:
    def __init__(self, upstream: str, *, core: str | None):
        exe = ensure_installed()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Not a well-known key: the proxy refuses those.
        self.master_key = "sk-bench-" + secrets.token_urlsafe(24)
        config = {
            "model_list": [
                {
                    "model_name": MODEL,
                    "litellm_params": {
                        "model": f"openai/{MODEL}",
                        "api_base": upstream + "/v1",
                        "api_key": "bench-upstream-key",
                    },
                }
            ],
            "litellm_settings": {
                "set_verbose": False,
                "json_logs": True,
                "request_timeout": 600,
                "callbacks": [],
                "success_callback": [],
                "failure_callback": [],
            },
            "general_settings": {
                "master_key": self.master_key,
                "disable_spend_logs": True,
                "disable_error_logs": True,
                "proxy_batch_write_at": 60,
            },
        }
        path = WORK / "litellm-config.yaml"
        path.write_text(yaml.safe_dump(config))
        os.chmod(path, 0o600)
        env = {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_LOG": "ERROR",
            "LITELLM_MODE": "PRODUCTION",
            "DISABLE_ADMIN_UI": "True",
            "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True",
        }
        argv = [
            str(exe),
            "--config",
            str(path),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--num_workers",
            "1",
        ]
        self.proc = Proc("litellm", argv, core=core, env=env, cwd=WORK)
        try:
            self.proc.wait_http(self.url + "/health/liveliness", timeout=180)
        except Exception:
            self.proc.stop()
            raise

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.master_key}"}

    def stop(self) -> None:
        self.proc.stop()
