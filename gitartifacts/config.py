"""The only reader of environment variables and `.gart/` config files."""

from __future__ import annotations

import functools
import hmac
import os
import re
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitartifacts.errors import ConfigError, NotARepositoryError
from gitartifacts.fsutil import atomic_write

GART_DIR = ".gart"
CONFIG_FILE = "config.yaml"
LOCAL_CONFIG_FILE = "config.local.yaml"
LINK_TYPES = ("reflink", "hardlink", "symlink", "copy")
DEFAULT_LINK_TYPES = ["reflink", "copy"]
DEFAULT_PACK_THRESHOLD = 1 << 20
DEFAULT_CHUNK_THRESHOLD = 8 << 20  # files this large are stored as content-defined chunks
DEFAULT_CHUNK_AVG = 64 << 10
DEFAULT_JOBS = 8
MAX_JOBS = 256  # the same bound as `-j`
REMOTE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# Remote options known to be safe to commit: locations, regions, profile names, switches and
# sizes of the fsspec backends. An allow-list, not a list of secrets: any other option (a
# credential, or one gart does not know) is accepted only in config.local.yaml.
SAFE_OPTIONS = frozenset(
    {"endpoint_url", "endpointurl", "region", "region_name", "profile", "anon", "use_ssl",
     "requester_pays", "version_aware", "cache_regions", "default_block_size",
     "default_fill_cache", "default_cache_type", "max_concurrency", "fixed_upload_size",
     "skip_instance_cache", "use_listings_cache", "listings_expiry_time", "max_paths",
     "project", "access", "consistency", "default_location", "cache_timeout",
     "requests_timeout", "check_connection", "account_name", "account_host", "location_mode",
     "blocksize", "socket_timeout", "connect_timeout", "read_timeout", "retries"}
)
# Names that look like a credential: their values are masked in any text gart prints.
_SECRET_NAME_RE = re.compile(
    r"key|secret|token|passw|pwd|credential|sas|connection_?string|auth|cert|private|session"
    r"|signature|cookie|bearer|user|login|client_?id|tenant",
    re.IGNORECASE,
)
# Environment variables whose values are credentials (AWS_SECRET_ACCESS_KEY, GITHUB_TOKEN, ...).
_SECRET_ENV_RE = re.compile(
    r"SECRET|TOKEN|PASSWORD|PASSWD|ACCESS_KEY|ACCOUNT_KEY|API_KEY|PRIVATE_KEY|SAS_|"
    r"CONNECTION_STRING"
)
# `scheme://userinfo@`: the userinfo runs to the last '@' before the end of the authority.
_URL_USERINFO_RE = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://([^\s/?#'\"<>]*)@")
# `?sig=...&X-Amz-Credential=...`: query parameters that carry a credential (SAS, presigned).
_URL_QUERY_SECRET_RE = re.compile(
    r"([?&][^=&\s'\"#]*(?:sig|token|key|secret|passw|pwd|credential|auth)[^=&\s'\"#]*=)"
    r"[^&\s'\"#]+",
    re.IGNORECASE,
)
# ssh user names are not secrets (ssh://git@host); other schemes carry tokens there.
_USER_SCHEMES = frozenset({"ssh", "sftp", "git+ssh", "ssh+git"})
_MASK = "***"
_MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words
_known_secrets: set[str] = set()


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
    autocheckout: bool = False  # post-checkout/post-merge hooks run `gart checkout`
    cache_dir: Path | None = None
    link_types: list[str] = field(default_factory=lambda: list(DEFAULT_LINK_TYPES))
    pack_threshold: int = DEFAULT_PACK_THRESHOLD
    chunk_threshold: int = DEFAULT_CHUNK_THRESHOLD
    chunk_avg: int = DEFAULT_CHUNK_AVG
    default_remote: str | None = None
    remotes: dict[str, RemoteConfig] = field(default_factory=dict)
    protected_aliases: list[str] = field(default_factory=list)
    jobs: int = DEFAULT_JOBS
    projects: dict[str, str] = field(default_factory=dict)  # W&B "entity/project" -> git URL

    @property
    def gart_dir(self) -> Path:
        return self.root / GART_DIR

    @property
    def cache_path(self) -> Path:
        return self.cache_dir or self.gart_dir / "cache"

    @property
    def tmp_path(self) -> Path:
        return private_tmp(self.gart_dir)


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
    _check_version(data, str(path))
    return data


def _check_version(data: dict[str, Any], source: str) -> None:
    version = data.get("gart", 1)
    if version != 1 or isinstance(version, bool):  # `gart: true` == 1 in Python
        raise ConfigError(
            f"{source}: format gart: {version!r} is not supported by this gart",
            hint="upgrade gitartifacts (pip install -U gitartifacts)",
        )


def _load_yaml_cached(text: bytes, path: Path) -> Any:
    """Strict YAML, remembered under the sha256 of the bytes in .gart/tmp/parsed-config/.

    Every command reads the config; a hit skips importing and running PyYAML (~20 ms of a
    `gart status` that should take a few hundred)."""
    import hashlib
    import marshal

    key = hashlib.sha256(text).hexdigest()
    cached = private_tmp(path.parent) / "parsed-config" / key
    try:
        return marshal.loads(cached.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        pass
    from gitartifacts import safeyaml

    data = safeyaml.load(text, what=str(path), max_bytes=1 << 20)
    try:
        atomic_write(cached, marshal.dumps(data))
    except (OSError, ValueError):
        pass  # only a cache
    return data


def write_raw(path: Path, data: dict[str, Any]) -> None:
    """Write a config mapping atomically, `gart: 1` first."""
    body = {"gart": 1, **{k: v for k, v in data.items() if k != "gart"}}
    from gitartifacts import safeyaml

    atomic_write(path, safeyaml.dump(body).encode("utf-8"))


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
    check_private_layout(shared.parent)
    layers = [(str(shared), read_raw(shared)), (str(local), read_raw(local))]
    check_layer(layers[0][1], layers[0][0], committed=True)
    check_layer(layers[1][1], layers[1][0], committed=False)
    return _build(root, layers)


def parse_config(root: Path, data: dict[str, Any], source: str) -> Config:
    """Validate one committed config mapping (e.g. another repository's) and build a Config."""
    check_layer(data, source, committed=True)
    return _build(root, [(source, data)])


# -- the schema: every key of both files, its check and what it accepts --------------------


@dataclass(frozen=True)
class Setting:
    """One key of a config section: how to check its value, and how to say what it accepts."""

    accepts: str
    check: Callable[[Any], bool]


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _int_from(low: int, high: int | None = None) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return (isinstance(value, int) and not isinstance(value, bool) and value >= low
                and (high is None or value <= high))
    return check


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _is_remote_name(value: Any) -> bool:
    return isinstance(value, str) and REMOTE_NAME_RE.fullmatch(value) is not None


def _is_link_types(value: Any) -> bool:
    kinds = [value] if isinstance(value, str) else value
    return isinstance(kinds, list) and bool(kinds) and all(k in LINK_TYPES for k in kinds)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


SCHEMA: dict[str, dict[str, Setting]] = {
    "core": {
        "autostage": Setting("true or false", _is_bool),
        "autocheckout": Setting("true or false", _is_bool),
        "remote": Setting("a remote name ([A-Za-z0-9][A-Za-z0-9._-]*)", _is_remote_name),
        "jobs": Setting(f"an integer from 1 to {MAX_JOBS}", _int_from(1, MAX_JOBS)),
    },
    "cache": {
        "dir": Setting("a directory path (absolute, ~/..., or relative to the repository root)",
                       _is_path),
        "type": Setting(f"one of {', '.join(LINK_TYPES)}, or a list of them in order of "
                        "preference", _is_link_types),
        "pack_threshold": Setting("a size in bytes, 0 or more", _int_from(0)),
        "chunk_threshold": Setting("a size in bytes, 1 MiB (1048576) or more",
                                   _int_from(1 << 20)),
        "chunk_avg": Setting("a size in bytes from 4096 to 1048576", _int_from(4096, 1 << 20)),
    },
    "aliases": {"protected": Setting("a list of alias names", _is_str_list)},
}
TOP_LEVEL_KEYS = ("gart", *SCHEMA, "remotes", "projects")
# W&B's `entity/project` (or a bare `project`), each part W&B's name rule.
PROJECT_RE = re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}/)?[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")


def check_layer(data: dict[str, Any], source: str, committed: bool) -> None:
    """Refuse unknown keys, bad values and, in a committed file, anything that may be a secret.

    Each file is checked on its own, so every error names the file it is in."""
    _check_version(data, source)
    for key, value in data.items():
        if key not in TOP_LEVEL_KEYS:
            _unknown(source, str(key), str(key), TOP_LEVEL_KEYS, "top-level keys")
        if key in SCHEMA:
            section = _mapping(value, source, str(key))
            settings = SCHEMA[key]
            for name, item in section.items():
                dotted = f"{key}.{name}"
                if name not in settings:
                    _unknown(source, dotted, str(name), tuple(settings), f"keys of {key}")
                if not settings[name].check(item):
                    raise ConfigError(
                        f"{source}: {dotted} is {_short(item)}; expected "
                        f"{settings[name].accepts}",
                        hint=f"edit {Path(source).name}, or remove {dotted} to use the default",
                    )
    for name, body in _mapping(data.get("remotes"), source, "remotes").items():
        _check_remote(source, name, body, committed)
    for project, url in _mapping(data.get("projects"), source, "projects").items():
        _check_project(source, project, url)


def _check_project(source: str, project: Any, url: Any) -> None:
    """`projects: {team/vision: git@host:team/vision.git}`; `.` names this repository."""
    where = f"projects.{project}"
    if not isinstance(project, str) or not PROJECT_RE.fullmatch(project):
        raise ConfigError(f"{source}: {where} is not a W&B project path; expected "
                          "ENTITY/PROJECT or PROJECT", hint="rename the key, e.g. team/vision")
    if not _is_path(url):
        raise ConfigError(f"{source}: {where} must be a git URL, a path, or '.' for this "
                          "repository", hint=f"e.g. `projects: {{{project}: "
                          "git@github.com:team/vision.git}`")
    if url_has_credentials(url):
        raise ConfigError(f"{source}: {where} contains credentials",
                          hint="use git's credential helper or SSH keys instead")


def _check_remote(source: str, name: Any, body: Any, committed: bool) -> None:
    where = f"remotes.{name}"
    if not isinstance(name, str) or not REMOTE_NAME_RE.fullmatch(name):
        raise ConfigError(f"{source}: {where} is not a valid remote name; expected "
                          "[A-Za-z0-9][A-Za-z0-9._-]*", hint="rename the remote in the file")
    if not isinstance(body, dict):
        raise ConfigError(f"{source}: {where} must be a mapping with a 'url' and options",
                          hint=f"e.g. `remotes: {{{name}: {{url: s3://bucket/prefix}}}}`")
    for key, value in body.items():
        if not isinstance(key, str):
            raise ConfigError(f"{source}: {where}: option names must be strings, not {key!r}")
        dotted = f"{where}.{key}"
        if key == "url":
            if not _is_path(value):
                raise ConfigError(f"{source}: {dotted} must be a local path or URL")
            if url_has_credentials(value):
                raise ConfigError(
                    f"{source}: {dotted} contains credentials", hint=_url_hint(name, committed)
                )
        elif committed and key.lower() not in SAFE_OPTIONS:
            raise ConfigError(
                f"{source}: {dotted} is not an option known to be safe to commit "
                "(it may hold a secret)", hint=_move_hint(name),
            )
        elif committed and isinstance(value, (dict, list)):
            raise ConfigError(f"{source}: {dotted} must be a single value in a committed file",
                              hint=_move_hint(name))
        elif committed and any(url_has_credentials(s) for s in _strings(value)):
            raise ConfigError(f"{source}: {dotted} is a URL with credentials",
                              hint=_move_hint(name))


def _move_hint(remote: str) -> str:
    return (f"move remotes.{remote} options that may be secrets to .gart/config.local.yaml "
            "(git-ignored, same layout) or the environment; if this file was ever pushed, "
            "rotate the secret")


def _url_hint(remote: str, committed: bool) -> str:
    hint = ("take the credentials out of the URL and store them as options with "
            f"`gart remote modify {remote} KEY VALUE --local` (.gart/config.local.yaml), "
            "or in the environment")
    return hint + ("; if this file was ever pushed, rotate them" if committed else "")


def _unknown(source: str, dotted: str, name: str, known: tuple[str, ...], what: str) -> None:
    import difflib

    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    raise ConfigError(
        f"{source}: unknown key {dotted!r}" + (f" (did you mean {close[0]!r}?)" if close else ""),
        hint=f"{what}: {', '.join(known)}",
    )


def _mapping(value: Any, source: str, key: str) -> dict[str, Any]:
    if value is None:  # `core:` with nothing under it
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: '{key}' must be a mapping")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _strings(value: Any) -> list[str]:
    """Every string inside a (nested) option value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _build(root: Path, layers: list[tuple[str, dict[str, Any]]]) -> Config:
    """Merge checked layers (committed first) and apply the environment."""
    data: dict[str, Any] = {}
    for _source, layer in layers:
        data = merge(data, layer)

    def source_of(section: str, key: str) -> str:
        return next(s for s, layer in reversed(layers) if key in (layer.get(section) or {}))

    core, cache = data.get("core") or {}, data.get("cache") or {}
    config = Config(root=root)
    config.autostage = core.get("autostage", True)
    config.autocheckout = core.get("autocheckout", False)
    config.jobs = core.get("jobs", DEFAULT_JOBS)
    config.default_remote = core.get("remote")
    committed_dir = (layers[0][1].get("cache") or {}).get("dir")
    if committed_dir is not None and not _inside_repository(root, str(committed_dir)):
        raise ConfigError(
            f"{layers[0][0]}: cache.dir {committed_dir!r} leads outside the repository; a "
            "committed file may not choose where gart writes on other machines",
            hint="set it in .gart/config.local.yaml (or GART_CACHE_DIR) on this machine instead",
        )
    cache_dir = os.environ.get("GART_CACHE_DIR") or cache.get("dir")
    if cache_dir:
        cache_path = Path(os.path.expanduser(str(cache_dir)))
        config.cache_dir = cache_path if cache_path.is_absolute() else root / cache_path
    link_types = cache.get("type", DEFAULT_LINK_TYPES)
    config.link_types = [link_types] if isinstance(link_types, str) else list(link_types)
    config.pack_threshold = cache.get("pack_threshold", DEFAULT_PACK_THRESHOLD)
    config.chunk_threshold = cache.get("chunk_threshold", DEFAULT_CHUNK_THRESHOLD)
    config.chunk_avg = cache.get("chunk_avg", DEFAULT_CHUNK_AVG)
    for name, body in (data.get("remotes") or {}).items():
        if "url" not in body:
            raise ConfigError(
                f"{source_of('remotes', name)}: remote {name!r} needs a 'url'",
                hint=f"add it with `gart remote add {name} URL`, or remove remotes.{name}",
            )
        options = {k: v for k, v in body.items() if k != "url"}
        _remember_secrets(options)
        config.remotes[name] = RemoteConfig(name, body["url"], options)
    apply_env_remotes(config.remotes)
    config.protected_aliases = list((data.get("aliases") or {}).get("protected", []))
    config.projects = dict(data.get("projects") or {})
    if config.default_remote is not None and config.default_remote not in config.remotes:
        raise ConfigError(
            f"{source_of('core', 'remote')}: default remote {config.default_remote!r} is not "
            "defined",
            hint="run `gart remote list` and `gart remote add NAME URL --default`",
        )
    return config


# -- secrets: which options may be committed, and masking them in what gart prints ----------


def looks_secret(name: str) -> bool:
    """True for option names that look like a credential (client_secret, sas_token, ...)."""
    return _SECRET_NAME_RE.search(name) is not None


def is_safe_option(name: str) -> bool:
    """True for option names known to be safe in the committed config.yaml."""
    return name.lower() in SAFE_OPTIONS


def url_has_credentials(value: str) -> bool:
    """True for `scheme://user:password@...`, `scheme://token@...` (except for ssh), and a
    URL whose query carries a credential (`?sig=...`, `?token=...`)."""
    if _URL_QUERY_SECRET_RE.search(value) and "://" in value:
        return True
    match = _URL_USERINFO_RE.match(value.strip())
    if match is None:
        return False
    return ":" in match.group(2) or match.group(1).lower() not in _USER_SCHEMES


def display_option(name: str, value: Any) -> Any:
    """An option's value as `gart remote list` shows it: *** unless known to be safe."""
    if not is_safe_option(name):
        return _MASK
    return redact(value) if isinstance(value, str) else value


def _remember_secrets(options: dict[str, Any], under_secret: bool = False) -> None:
    """Note the values of credential-like options, so that `redact` masks them anywhere."""
    for key, value in options.items():
        secret = under_secret or looks_secret(str(key))
        if isinstance(value, dict):
            _remember_secrets(value, secret)
        elif secret:
            _known_secrets.update(
                s for s in _strings(value) if len(s) >= _MIN_SECRET_LENGTH
            )


def redact(text: str) -> str:
    """`text` with URL passwords, non-ssh URL user names, credential query parameters
    (`?sig=`) and known secret values masked.

    Known: credential-like options of the config files loaded by this process, and
    credential-like environment variables (AWS_SECRET_ACCESS_KEY, GITHUB_TOKEN, ...)."""
    text = _URL_USERINFO_RE.sub(_mask_userinfo, text)
    text = _URL_QUERY_SECRET_RE.sub(rf"\1{_MASK}", text)
    secrets = _known_secrets | {
        value for name, value in os.environ.items()
        if _SECRET_ENV_RE.search(name.upper()) and len(value) >= 8
    }
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, _MASK)
    return text


def _mask_userinfo(match: re.Match[str]) -> str:
    scheme, userinfo = match.group(1), match.group(2)
    user, colon, _password = userinfo.partition(":")
    if colon:
        return f"{scheme}://{user}:{_MASK}@"
    if scheme.lower() in _USER_SCHEMES:
        return match.group(0)
    return f"{scheme}://{_MASK}@"


def env_flag(name: str) -> bool:
    """A boolean environment switch such as GART_QUIET=1."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def env_value(name: str) -> str | None:
    """A raw environment value (GART_RUN_ID, ...); None when unset or empty."""
    return os.environ.get(name) or None


# -- remote options from the environment: GART_REMOTE_<NAME>_<OPTION> ----------------------

ENV_REMOTE_PREFIX = "GART_REMOTE_"


def env_remote_key(name: str) -> str:
    """The environment prefix of a remote: `GART_REMOTE_` + its name upper-cased, `-`/`.` as `_`."""
    return ENV_REMOTE_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper() + "_"


def apply_env_remotes(remotes: dict[str, RemoteConfig]) -> None:
    """Overlay `GART_REMOTE_<NAME>_<OPTION>=value` on the remotes (`_URL` may define one).

    Values from the environment win over both config files, are never written to a file,
    and (unless the option is known to be safe) are masked in everything gart prints.
    `true`/`false` become booleans. A variable belongs to the remote with the longest
    matching prefix: `GART_REMOTE_A_B_URL` is remote `a_b`'s url when `a_b` is configured."""
    env = {var: value for var, value in os.environ.items()
           if var.startswith(ENV_REMOTE_PREFIX) and value}
    # Remotes the environment alone defines (`GART_REMOTE_CI_URL`): shortest names first, so
    # `GART_REMOTE_CI_ENDPOINT_URL` is remote ci's endpoint_url, not a remote `ci_endpoint`.
    for var, value in sorted(env.items(), key=lambda item: (len(item[0]), item[0])):
        name = var[len(ENV_REMOTE_PREFIX):-len("_URL")].lower()
        if (var.endswith("_URL") and REMOTE_NAME_RE.fullmatch(name)
                and not any(var.startswith(env_remote_key(n)) for n in remotes)):
            remotes[name] = RemoteConfig(name, value, {})
    for var, value in env.items():
        owners = [n for n in remotes if var.startswith(env_remote_key(n))]
        if not owners:
            continue
        owner = max(owners, key=len)
        option = var[len(env_remote_key(owner)):].lower()
        if option == "url":
            remotes[owner].url = value
        elif option:
            remotes[owner].options[option] = _env_option_value(value)
            if not is_safe_option(option) and len(value) >= _MIN_SECRET_LENGTH:
                _known_secrets.add(value)


def _env_option_value(value: str) -> Any:
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return value


def update_config(
    root: Path, mutate: Callable[[dict[str, Any]], None], local: bool = False
) -> None:
    """Read one config file, let `mutate` change the mapping, write it back atomically.

    The result is checked first: a value that would not load (or a secret bound for the
    committed file) is refused with nothing written."""
    shared, local_path = config_paths(root)
    path = local_path if local else shared
    data = read_raw(path)
    mutate(data)
    check_layer(data, str(path), committed=not local)
    write_raw(path, data)


def read_layer(root: Path, local: bool) -> dict[str, Any]:
    """The raw mapping of the committed (or local) config file alone."""
    shared, local_path = config_paths(root)
    return read_raw(local_path if local else shared)


def _inside_repository(root: Path, path: str) -> bool:
    """A relative path that stays inside the repository: no `~`, no absolute path, no `..`,
    no symlink out of it."""
    if path.startswith("~") or os.path.isabs(path) or re.match(r"^[A-Za-z]:", path):
        return False
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(root, path))
    return ".." not in Path(path).parts and real.startswith(real_root + os.sep)


# -- the machine-local secret: caches under .gart/tmp that git cannot forge -----------------

SECRET_FILE = "local-secret"
PRIVATE_DIRS = ("", "tmp", "cache", "artifacts", "runs")  # under .gart; never symlinks


def local_secret() -> bytes:
    """32 random bytes kept in the user cache directory, never in a repository.

    Everything gart caches under `.gart/tmp` lives in a directory named after this secret,
    so files someone committed there (force-added past .gitignore) are never read: they
    cannot guess the name. Without a writable user cache directory the secret lives only
    in this process, which keeps the guarantee and only costs speed."""
    return _secret_at(user_cache_dir() / SECRET_FILE)


@functools.cache
def _secret_at(path: Path) -> bytes:
    for _attempt in range(3):
        try:
            data = path.read_bytes()
            if len(data) == 32:
                return data
        except FileNotFoundError:
            pass
        except OSError:
            break
        try:  # complete first, then published with link(): readers never see a short file
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(secrets.token_bytes(32))
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process won: read theirs
            finally:
                os.unlink(tmp)
        except OSError:
            break
    return secrets.token_bytes(32)


def private_tmp(gart_dir: Path) -> Path:
    """`.gart/tmp/local-<tag>`: this machine's caches for the repository at gart_dir."""
    return _private_tmp(gart_dir, local_secret())


@functools.cache
def _private_tmp(gart_dir: Path, secret: bytes) -> Path:
    tag = hmac.new(secret, os.fsencode(os.path.abspath(gart_dir)), "sha256")
    return gart_dir / "tmp" / f"local-{tag.hexdigest()[:24]}"


def check_private_layout(gart_dir: Path) -> None:
    """Refuse to work when `.gart` or a directory gart writes in it is a symlink (or not a
    directory): a committed symlink there would lead gart's writes out of the repository."""
    for name in (*PRIVATE_DIRS, f"tmp/{private_tmp(gart_dir).name}"):
        path = gart_dir / name if name else gart_dir
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(mode):
            kind = "a symlink" if stat.S_ISLNK(mode) else "not a directory"
            raise ConfigError(
                f"{path} is {kind}; gart will not write through it",
                hint=f"remove it (`git rm --cached {GART_DIR}/{name}` if it was committed, "
                "then delete it) and run the command again",
            )


def user_cache_dir() -> Path:
    """Where gart keeps objects and fetched repositories when used outside a repository."""
    base = os.environ.get("GART_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gitartifacts"
    )
    return Path(base)
