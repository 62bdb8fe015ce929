"""Every error gart raises: one GartError root, each carrying a hint for the next step."""

from __future__ import annotations


class GartError(Exception):
    """Root of every error gart raises on purpose; the CLI prints it as one line plus a hint."""

    hint: str = ""
    exit_code: int = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class UsageError(GartError, ValueError):
    """The command was called with arguments that cannot work (exit 2)."""

    exit_code = 2


class NotARepositoryError(GartError):
    """Not inside a git repository, or gart is not initialised in it."""


class ConfigError(GartError, ValueError):
    """A config file is unreadable or holds values gart does not accept."""


class InvalidNameError(GartError, ValueError):
    """An artifact name, alias or version does not follow the naming rules."""


class InvalidPathError(GartError, ValueError):
    """A path is outside the repository, inside .git, unsafe or not representable."""


class ManifestError(GartError, ValueError):
    """A manifest (or another YAML record) is malformed, unsafe or of an unknown format."""


class ArtifactNotFoundError(GartError, LookupError):
    """No artifact, version or alias by that name."""


class ObjectNotFoundError(GartError, FileNotFoundError):
    """An object is absent from the cache or the remote."""


class CorruptObjectError(GartError, OSError):
    """An object's bytes do not match its digest."""


class RemoteError(GartError, OSError):
    """A remote could not be reached, or refused an operation."""


class RemoteAccessError(RemoteError, PermissionError):
    """The remote refused our credentials, or has none to go by (never retried)."""


class BucketNotFoundError(RemoteError):
    """The remote's bucket or container does not exist: not an empty remote, an error."""


class RemoteUnreachableError(RemoteError, ConnectionError):
    """The remote's endpoint could not be connected to, or did not answer in time."""


class GitError(GartError, RuntimeError):
    """A git operation failed."""


class ConflictError(GartError):
    """The working tree or a ref changed under us; nothing was overwritten."""


class TagRaceError(ConflictError):
    """A compare-and-swap on a tag lost to another writer."""
