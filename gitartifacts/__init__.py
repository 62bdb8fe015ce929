"""gitartifacts (`gart`): versioned datasets and models — manifests in git, bytes in any remote."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Artifact", "Repo", "Run", "init", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import gitartifacts` (and `gart status`) stays cheap.
    if name in ("Artifact", "Repo"):
        from gitartifacts import api

        return getattr(api, name)
    if name in ("Run", "init"):
        from gitartifacts import wandb_api

        return getattr(wandb_api, name)
    raise AttributeError(f"module 'gitartifacts' has no attribute {name!r}")
