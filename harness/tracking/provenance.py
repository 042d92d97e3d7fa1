"""Who ran a run, with what command, at which commit of the harness: MLflow's standard source
tags, which the UI shows as each run's User, Source and Version."""

from __future__ import annotations

import functools
import getpass
import os
import shlex
import subprocess
import sys
from pathlib import Path


@functools.cache
def git_commit() -> str:
    """The harness's commit: from git, else HARNESS_GIT_COMMIT (set in images built without
    .git), else unknown."""
    fallback = os.environ.get("HARNESS_GIT_COMMIT", "unknown")
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return fallback
    return done.stdout.strip() if done.returncode == 0 else fallback


def source_tags() -> dict[str, str]:
    """mlflow.user, mlflow.source.name/type and mlflow.source.git.commit for a run started by
    this process (the command as typed, `harness sweep ...`)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for this uid (some containers)
        user = str(os.getuid())
    tags = {"mlflow.user": user, "mlflow.source.type": "LOCAL",
            "mlflow.source.name": shlex.join(["harness", *sys.argv[1:]])[:500]}
    commit = git_commit()
    if commit != "unknown":
        tags["mlflow.source.git.commit"] = commit
    return tags
