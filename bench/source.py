"""Which Meshgate a run measures: the working tree (default) or one commit (BENCH_SOURCE)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(__file__).resolve().parent / ".work"


def source_env() -> dict[str, str]:
    """``BENCH_SOURCE=<commit>`` runs Meshgate from that commit instead of the working tree.

    The commit's ``src`` is exported (``git archive``, which reads only the object store) into
    bench/.work/src-<sha> and put first on every child's PYTHONPATH, ahead of the editable
    install: a shared checkout's half-edited files then cannot break or skew a run.
    """
    ref = os.environ.get("BENCH_SOURCE", "")
    if not ref or ref == "worktree":
        return {}
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", ref + "^{commit}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # Pinned for the rest of the run (and its children): a moving HEAD must not change it.
    os.environ["BENCH_SOURCE"] = sha
    target = WORK / f"src-{sha[:12]}"
    if not (target / "src" / "meshgate").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", sha, "src"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return {"PYTHONPATH": str(target / "src")}


def source_description() -> str:
    ref = os.environ.get("BENCH_SOURCE", "")
    head = subprocess.run(
        ["git", "rev-parse", "--short", (ref if ref and ref != "worktree" else "HEAD")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if ref and ref != "worktree":
        return f"Meshgate from commit {head} (BENCH_SOURCE={ref})"
    return f"Meshgate from the working tree (HEAD {head}, uncommitted changes included)"
