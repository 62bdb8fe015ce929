"""Remote definitions in .gart/config(.local).yaml: add, modify, remove, default, open."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gitartifacts import config as configmod
from gitartifacts.errors import UsageError
from gitartifacts.objects import ObjectStore
from gitartifacts.repocore import RepoCore

if TYPE_CHECKING:  # imported only by the commands that need them, to keep start-up fast
    pass


class RemoteConfigRoom(RepoCore):
    """Remote definitions: add, modify, remove, choose the default, open a store."""

    def remote_add(self, name: str, url: str, default: bool = False, local: bool = False) -> None:
        """Define a remote (in config.yaml, or config.local.yaml with `local`)."""
        from gitartifacts.remote import check_url

        if not configmod.REMOTE_NAME_RE.fullmatch(name):
            raise UsageError(f"invalid remote name {name!r}", hint="e.g. storage, s3-main")
        check_url(url)
        if name in self.config.remotes:
            raise UsageError(
                f"remote {name!r} already exists ({self.config.remotes[name].url})",
                hint=f"change it with `gart remote modify {name} url NEW_URL`",
            )

        def mutate(data: dict[str, Any]) -> None:
            data.setdefault("remotes", {})[name] = {"url": url}
            if default:
                data.setdefault("core", {})["remote"] = name

        self._update_config(mutate, local)

    def remote_modify(
        self, name: str, key: str, value: str | None, local: bool = False, unset: bool = False
    ) -> None:
        """Set (or unset) one option of a remote, e.g. endpoint_url or profile."""
        from gitartifacts.remote import check_option, check_options, check_url

        if name not in self.config.remotes:
            raise UsageError(f"no remote named {name!r}", hint=self._remotes_hint())
        if not unset:
            if value is None:
                raise UsageError(f"no value for {key!r}", hint="use --unset to remove an option")
            if key == "url":
                check_url(value)
            else:  # a misspelt option fails now (with a suggestion), not at the first push
                current = self.config.remotes[name]
                check_options(configmod.RemoteConfig(
                    name, current.url, {**current.options, key: _option_value(value)}))
            check_option(key, local, value)

        def mutate(data: dict[str, Any]) -> None:
            remotes = data.setdefault("remotes", {})
            body = remotes.setdefault(name, {})
            if unset:
                body.pop(key, None)
                if not body:
                    remotes.pop(name)
            else:
                body[key] = _option_value(value or "")

        self._update_config(mutate, local)

    def remote_remove(self, name: str) -> None:
        if name not in self.config.remotes:
            raise UsageError(f"no remote named {name!r}", hint=self._remotes_hint())
        def mutate(data: dict[str, Any]) -> None:
            (data.get("remotes") or {}).pop(name, None)
            if (data.get("core") or {}).get("remote") == name:
                data["core"].pop("remote")

        # Both files first, then one reload: half-removed (options without a url) never loads.
        configmod.update_config(self.root, mutate, local=True)
        self._update_config(mutate, local=False)

    def remote_default(self, name: str) -> None:
        if name not in self.config.remotes:
            raise UsageError(f"no remote named {name!r}", hint=self._remotes_hint())
        self._update_config(
            lambda data: data.setdefault("core", {}).__setitem__("remote", name), local=False
        )

    def _update_config(self, mutate: Callable[[dict[str, Any]], None], local: bool) -> None:
        """Change one config file, re-read the result, stage the committed file in git."""
        configmod.update_config(self.root, mutate, local=local)
        self.config = configmod.load_config(self.root)
        if not local and self.config.autostage:
            self.git.stage([f"{configmod.GART_DIR}/{configmod.CONFIG_FILE}"])

    def _remotes_hint(self) -> str:
        names = ", ".join(sorted(self.config.remotes))
        return f"known remotes: {names}" if names else "add one with `gart remote add NAME URL`"

    def remote_config(self, name: str | None = None) -> configmod.RemoteConfig:
        chosen = name or self.config.default_remote
        if chosen is None:
            if len(self.config.remotes) == 1:
                return next(iter(self.config.remotes.values()))
            raise UsageError(
                "no remote given and no default remote set",
                hint="run `gart remote add storage PATH_OR_URL --default`"
                if not self.config.remotes else "pass -r NAME or set one with --default",
            )
        if chosen not in self.config.remotes:
            raise UsageError(f"no remote named {chosen!r}", hint=self._remotes_hint())
        return self.config.remotes[chosen]

    def remote_store(self, name: str | None = None) -> ObjectStore:
        from gitartifacts.remote import open_store

        return open_store(
            self.remote_config(name), self.root, self.config.tmp_path / "remote-indexes"
        )


def _option_value(text: str) -> Any:
    """Config values typed on the command line: true/false/numbers become YAML scalars."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        return text


