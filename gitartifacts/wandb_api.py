"""The W&B-shaped Python API in one import: `init`, `Run`, `Artifact`, `Api` and the
versions they return. The rooms: `wandb_run` (init, Run), `wandb_artifact` (a logged or used
version), `wandb_public` (Api, projects); `tracking.Artifact` builds a new one."""

from __future__ import annotations

from gitartifacts.api import Artifact
from gitartifacts.wandb_artifact import ArtifactEntry, ArtifactVersion, Collection, VerifyError
from gitartifacts.wandb_public import Api
from gitartifacts.wandb_run import (
    Run,
    current_run,
    finish,
    init,
    log_artifact,
    use_artifact,
)

__all__ = [
    "Api", "Artifact", "ArtifactEntry", "ArtifactVersion", "Collection", "Run", "VerifyError",
    "current_run", "finish", "init", "log_artifact", "use_artifact",
]
