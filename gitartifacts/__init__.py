"""gitartifacts (`gart`): versioned datasets and models — manifests in git, bytes in any remote.

`import gitartifacts as wandb` gives W&B's artifact API: `init`, `Artifact`, `Api`, `run`,
`use_artifact`, `log_artifact`, `finish` (docs/wandb.md)."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = [
    "Api", "Artifact", "ArtifactVersion", "Repo", "Run", "__version__", "finish", "init",
    "log_artifact", "run", "use_artifact",
]
_WANDB = ("Api", "ArtifactVersion", "Run", "init", "finish", "log_artifact", "use_artifact")


def __getattr__(name: str) -> Any:
    # Lazy, so `import gitartifacts` (and `gart status`) stays cheap.
    if name in ("Artifact", "Repo"):
        from gitartifacts import api

        return getattr(api, name)
    if name in _WANDB:
        from gitartifacts import wandb_api

        return getattr(wandb_api, name)
    if name == "run":  # W&B's `wandb.run`: the current run, or None
        from gitartifacts import wandb_run

        return wandb_run.current_run()
    raise AttributeError(f"module 'gitartifacts' has no attribute {name!r}")
