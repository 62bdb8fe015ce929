"""The only reader of environment variables and `.gart/` config files."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitartifacts.errors import ConfigError, NotARepositoryError

GART_DIR = ".gart"
CONFIG_FILE = "config.yaml"
LOCAL_CONFIG_FILE = "config.local.yaml"
LINK_TYPES = ("reflink", "hardlink", "symlink", "copy")
DEFAULT_LINK_TYPES = ["reflink", "copy"]
DEFAULT_PACK_THRESHOLD = 1 << 20
DEFAULT_JOBS = 8
REMOTE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# Option names that carry secrets: allowed only in config.local.yaml or the environment.
SECRET_OPTIONS = frozenset(
    {"key", "secret", "token", "password", "aws_access_key_id", "aws_secret_access_key",
     "aws_session_token", "secret_access_key", "access_key_id", "session_token",
     "account_key", "sas_token", "connection_string"}
)


@dataclass
class RemoteConfig:
    """A named remote: an fsspec URL plus options handed to the filesystem."""

    name: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Config:
    """Settings of one gart repository, merged from config.yaml, config.local.yaml and env."""

    root: Path
    autostage: bool = True
    cache_dir: Path | None = None
    link_types: list[str] = field(default_factory=lambda: list(DEFAULT_LINK_TYPES))
    pack_threshold: int = DEFAULT_PACK_THRESHOLD
    default_remote: str | None = None
    remotes: dict[str, RemoteConfig] = field(default_factory=dict)
    protected_aliases: list[str] = field(default_factory=list)
    jobs: int = DEFAULT_JOBS

    @property
    def gart_dir(self) -> Path:
        return self.root / GART_DIR

    @property
    def cache_path(self) -> Path:
        return self.cache_dir or self.gart_dir / "cache"

    @property
    def tmp_path(self) -> Path:
        return self.gart_dir / "tmp"


def config_paths(root: Path) -> tuple[Path, Path]:
    """The committed and the local (git-ignored) config file of a repository."""
    return root / GART_DIR / CONFIG_FILE, root / GART_DIR / LOCAL_CONFIG_FILE


def read_raw(path: Path) -> dict[str, Any]:
    """One config file as a mapping ({} when absent); refuses anything but a mapping."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    data = _load_yaml_cached(text, path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    version = data.get("gart", 1)
    if version != 1 or isinstance(version, bool):  # `gart: true` == 1 in Python
        raise ConfigError(
            f"{path}: format gart: {version!r} is not supported by this gart",
            hint="upgrade gitartifacts (pip install -U gitartifacts)",
        )
    return data


def _load_yaml_cached(text: bytes, path: Path) -> Any:
    """Strict YAML, remembered under the sha256 of the bytes in .gart/tmp/parsed-config/.

    Every command reads the config; a hit skips importing and running PyYAML (~20 ms of a
    `gart status` that should take a few hundred)."""
    import hashlib
    import marshal

    key = hashlib.sha256(text).hexdigest()
    cached = path.parent / "tmp" / "parsed-config" / key
    try:
        return marshal.loads(cached.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        pass
    from gitartifacts import safeyaml

    data = safeyaml.load(text, what=str(path), max_bytes=1 << 20)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{key}.{os.getpid()}.tmp")
        tmp.write_bytes(marshal.dumps(data))
        os.replace(tmp, cached)
    except (OSError, ValueError):
        pass  # only a cache
    return data


def write_raw(path: Path, data: dict[str, Any]) -> None:
    """Write a config mapping atomically, `gart: 1` first."""
    body = {"gart": 1, **{k: v for k, v in data.items() if k != "gart"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    from gitartifacts import safeyaml

    tmp.write_text(safeyaml.dump(body), encoding="utf-8")
    os.replace(tmp, path)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge two config mappings; the override wins on scalars."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(root: Path) -> Config:
    """Load the effective config of the gart repository at `root`."""
    shared, local = config_paths(root)
    if not shared.parent.is_dir():
        raise NotARepositoryError(
            f"gart is not initialised in {root}", hint="run `gart init` in the repository first"
        )
    data = merge(read_raw(shared), read_raw(local))
    return parse_config(root, data, source=str(shared))


def _section(data: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: '{key}' must be a mapping")
    return value


def parse_config(root: Path, data: dict[str, Any], source: str) -> Config:
    """Validate a merged config mapping and apply environment overrides."""
    core = _section(data, "core", source)
    cache = _section(data, "cache", source)
    remotes_raw = _section(data, "remotes", source)
    aliases = _section(data, "aliases", source)
    config = Config(root=root)
    config.autostage = _typed(core.get("autostage", True), bool, "core.autostage", source)
    config.jobs = _typed(core.get("jobs", DEFAULT_JOBS), int, "core.jobs", source)
    config.default_remote = core.get("remote")
    cache_dir = os.environ.get("GART_CACHE_DIR") or cache.get("dir")
    if cache_dir:
        cache_path = Path(os.path.expanduser(str(cache_dir)))
        config.cache_dir = cache_path if cache_path.is_absolute() else root / cache_path
    link_types = cache.get("type", DEFAULT_LINK_TYPES)
    if isinstance(link_types, str):
        link_types = [link_types]
    if not isinstance(link_types, list) or not link_types or any(
        t not in LINK_TYPES for t in link_types
    ):
        raise ConfigError(
            f"{source}: cache.type must be a list drawn from {', '.join(LINK_TYPES)}",
            hint="e.g. `cache: {type: [reflink, hardlink, copy]}`",
        )
    config.link_types = list(link_types)
    config.pack_threshold = _typed(
        cache.get("pack_threshold", DEFAULT_PACK_THRESHOLD), int, "cache.pack_threshold", source
    )
    for name, body in remotes_raw.items():
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            raise ConfigError(f"{source}: remote {name!r} needs a 'url'")
        options = {k: v for k, v in body.items() if k != "url"}
        config.remotes[str(name)] = RemoteConfig(str(name), body["url"], options)
    protected = aliases.get("protected", [])
    if not isinstance(protected, list) or not all(isinstance(a, str) for a in protected):
        raise ConfigError(f"{source}: aliases.protected must be a list of alias names")
    config.protected_aliases = protected
    if config.default_remote is not None and config.default_remote not in config.remotes:
        raise ConfigError(
            f"{source}: default remote {config.default_remote!r} is not defined",
            hint="run `gart remote list` and `gart remote add NAME URL --default`",
        )
    return config


def _typed(value: Any, kind: type, key: str, source: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{source}: {key} must be a {kind.__name__}, not {value!r}")
    return value


def env_flag(name: str) -> bool:
    """A boolean environment switch such as GART_QUIET=1."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def env_value(name: str) -> str | None:
    """A raw environment value (GART_RUN_ID, ...); None when unset or empty."""
    return os.environ.get(name) or None


def update_config(
    root: Path, mutate: Callable[[dict[str, Any]], None], local: bool = False
) -> None:
    """Read one config file, let `mutate` change the mapping, write it back atomically."""
    shared, local_path = config_paths(root)
    path = local_path if local else shared
    data = read_raw(path)
    mutate(data)
    write_raw(path, data)


def read_layer(root: Path, local: bool) -> dict[str, Any]:
    """The raw mapping of the committed (or local) config file alone."""
    shared, local_path = config_paths(root)
    return read_raw(local_path if local else shared)


def user_cache_dir() -> Path:
    """Where gart keeps objects and fetched repositories when used outside a repository."""
    base = os.environ.get("GART_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gitartifacts"
    )
    return Path(base)
