"""Config files and environment: defaults, local overrides, GART_CACHE_DIR, strict validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitartifacts import config
from gitartifacts.errors import ConfigError, GartError, NotARepositoryError


def write_config(root: Path, text: str, local: bool = False) -> None:
    shared, local_path = config.config_paths(root)
    (local_path if local else shared).write_text(text, encoding="utf-8")


def test_defaults_after_init(repo: Path) -> None:
    cfg = config.load_config(repo)
    assert cfg.autostage is True
    assert cfg.link_types == ["reflink", "copy"]
    assert cfg.pack_threshold == 1 << 20
    assert cfg.cache_path == repo / ".gart" / "cache"
    assert cfg.tmp_path.parent == repo / ".gart" / "tmp"  # under a machine-local secret name
    assert cfg.remotes == {} and cfg.default_remote is None


def test_init_writes_a_versioned_config_and_ignores_local_state(repo: Path) -> None:
    text = (repo / ".gart" / "config.yaml").read_text()
    assert text.startswith("gart: 1\n")
    ignored = (repo / ".gart" / ".gitignore").read_text().split()
    assert {"/cache/", "/tmp/", "/config.local.yaml"} <= set(ignored)


def test_not_initialised(tmp_path: Path) -> None:
    with pytest.raises(NotARepositoryError) as info:
        config.load_config(tmp_path)
    assert "gart init" in info.value.hint


def test_local_file_deep_merges_over_the_shared_one(repo: Path) -> None:
    write_config(
        repo, "gart: 1\ncore: {autostage: true, jobs: 3}\ncache: {type: [hardlink, copy]}\n"
    )
    write_config(repo, "core: {autostage: false}\ncache: {dir: shared-cache}\n", local=True)
    cfg = config.load_config(repo)
    assert cfg.autostage is False  # local wins
    assert cfg.jobs == 3  # untouched shared key survives the merge
    assert cfg.link_types == ["hardlink", "copy"]
    assert cfg.cache_path == repo / "shared-cache"  # relative to the repository root


def test_cache_dir_forms(repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Outside the repository only from the local file (test_security_caches: never committed).
    write_config(repo, "gart: 1\ncache: {dir: ~/gart-cache}\n", local=True)
    assert config.load_config(repo).cache_path == Path.home() / "gart-cache"
    write_config(repo, f"gart: 1\ncache: {{dir: {tmp_path / 'abs'}}}\n", local=True)
    assert config.load_config(repo).cache_path == tmp_path / "abs"
    monkeypatch.setenv("GART_CACHE_DIR", str(tmp_path / "from-env"))
    assert config.load_config(repo).cache_path == tmp_path / "from-env"  # env beats files


def test_single_link_type_string_is_accepted(repo: Path) -> None:
    write_config(repo, "gart: 1\ncache: {type: symlink}\n")
    assert config.load_config(repo).link_types == ["symlink"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("gart: 1\ncache: {type: [teleport]}\n", "cache.type"),
        ("gart: 1\ncache: {type: []}\n", "cache.type"),
        ("gart: 1\ncore: {autostage: 'yes'}\n", "core.autostage"),
        ("gart: 1\ncore: {jobs: true}\n", "core.jobs"),
        ("gart: 1\ncache: {pack_threshold: 1.5}\n", "cache.pack_threshold"),
        ("gart: 1\ncore: [a]\n", "'core' must be a mapping"),
        ("gart: 1\nremotes: {store: {}}\n", "needs a 'url'"),
        ("gart: 1\ncore: {remote: nowhere}\n", "not defined"),
        ("gart: 1\naliases: {protected: production}\n", "aliases.protected"),
        ("- a\n- b\n", "mapping at the top level"),
        ("gart: 2\n", "not supported"),
        ("gart: true\n", "not supported"),
    ],
)
def test_bad_values_are_refused_naming_the_file(repo: Path, text: str, problem: str) -> None:
    write_config(repo, text)
    with pytest.raises(ConfigError, match=problem) as info:
        config.load_config(repo)
    assert "config.yaml" in str(info.value)


@pytest.mark.parametrize(
    "text",
    ["gart: 1\ncore: !!python/object/apply:os.getcwd []\n", "a: &x 1\nb: *x\n", "a: 1\na: 2\n",
     "core: {autostage: [unclosed\n"],
)
def test_hostile_or_broken_yaml_is_refused(repo: Path, text: str) -> None:
    write_config(repo, text, local=True)
    with pytest.raises(GartError, match="config.local.yaml"):
        config.load_config(repo)


def test_unreadable_config_is_a_config_error(repo: Path) -> None:
    shared, _ = config.config_paths(repo)
    shared.unlink()
    shared.mkdir()
    with pytest.raises(ConfigError, match="cannot read"):
        config.load_config(repo)


def test_remotes_are_parsed_with_options(repo: Path) -> None:
    write_config(
        repo,
        "gart: 1\ncore: {remote: store}\n"
        "remotes: {store: {url: 's3://bucket/prefix', endpoint_url: 'http://127.0.0.1:9'}}\n",
    )
    cfg = config.load_config(repo)
    assert cfg.default_remote == "store"
    assert cfg.remotes["store"].url == "s3://bucket/prefix"
    assert cfg.remotes["store"].options == {"endpoint_url": "http://127.0.0.1:9"}


def test_write_raw_is_atomic_and_puts_the_version_first(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.yaml"
    config.write_raw(path, {"core": {"autostage": False}, "gart": 7})
    assert path.read_text().startswith("gart: 1\n")
    assert config.read_raw(path) == {"gart": 1, "core": {"autostage": False}}
    # no temp file left (tmp/ is gart's parse cache, beside the file as in .gart/)
    assert [p.name for p in path.parent.iterdir() if p.name != "tmp"] == ["config.yaml"]


def test_update_config_round_trips(repo: Path) -> None:
    config.update_config(repo, lambda data: data.setdefault("cache", {}).update(type=["copy"]))
    assert config.load_config(repo).link_types == ["copy"]
    assert config.read_layer(repo, local=False)["cache"] == {"type": ["copy"]}


def test_absent_file_reads_as_empty(tmp_path: Path) -> None:
    assert config.read_raw(tmp_path / "nope.yaml") == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("YES", True), (" on ", True), ("0", False), ("", False),
     ("no", False), ("2", False)],
)
def test_env_flag(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("GART_TEST_FLAG", value)
    assert config.env_flag("GART_TEST_FLAG") is expected


def test_env_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GART_TEST_VALUE", raising=False)
    assert config.env_value("GART_TEST_VALUE") is None
    monkeypatch.setenv("GART_TEST_VALUE", "")
    assert config.env_value("GART_TEST_VALUE") is None
    monkeypatch.setenv("GART_TEST_VALUE", "run-7")
    assert config.env_value("GART_TEST_VALUE") == "run-7"


# -- one schema for both files: every key and value checked, the file named ----------------


@pytest.mark.parametrize("local", [False, True])
@pytest.mark.parametrize(
    ("text", "key", "suggestion"),
    [
        ("core: {autostagee: false}\n", "core.autostagee", "autostage"),
        ("cahce: {dir: /tmp/x}\n", "cahce", "cache"),
        ("cache: {pack_treshold: 10}\n", "cache.pack_treshold", "pack_threshold"),
        ("core: {job: 4}\n", "core.job", "jobs"),
        ("alias: {protected: [production]}\n", "alias", "aliases"),
        ("aliases: {protect: [production]}\n", "aliases.protect", "protected"),
        ("remote: {storage: {url: /x}}\n", "remote", "remotes"),
    ],
)
def test_a_misspelt_key_is_refused_with_a_suggestion(
    repo: Path, local: bool, text: str, key: str, suggestion: str
) -> None:
    write_config(repo, text, local=local)
    with pytest.raises(ConfigError) as info:
        config.load_config(repo)
    message = str(info.value)
    assert ("config.local.yaml" if local else "config.yaml") in message
    assert key in message and f"did you mean {suggestion!r}" in message


@pytest.mark.parametrize("local", [False, True])
@pytest.mark.parametrize(
    ("text", "key", "accepted"),
    [
        ("core: {jobs: -3}\n", "core.jobs", "1 to 256"),
        ("core: {jobs: 0}\n", "core.jobs", "1 to 256"),
        ("core: {jobs: 100000}\n", "core.jobs", "1 to 256"),
        ("core: {jobs: '4'}\n", "core.jobs", "1 to 256"),
        ("cache: {dir: 5}\n", "cache.dir", "directory path"),
        ("cache: {dir: ''}\n", "cache.dir", "directory path"),
        ("cache: {dir: [a]}\n", "cache.dir", "directory path"),
        ("cache: {pack_threshold: -1}\n", "cache.pack_threshold", "0 or more"),
        ("cache: {type: [copy, teleport]}\n", "cache.type", "reflink, hardlink, symlink, copy"),
        ("core: {autostage: 1}\n", "core.autostage", "true or false"),
        ("core: {remote: 7}\n", "core.remote", "remote name"),
        ("aliases: {protected: [production, 3]}\n", "aliases.protected", "alias names"),
        ("remotes: [storage]\n", "remotes", "mapping"),
        ("remotes: {'bad name': {url: /x}}\n", "remotes.bad name", "A-Za-z0-9"),
        ("remotes: {storage: {url: 5}}\n", "remotes.storage.url", "path or URL"),
        ("remotes: {storage: /x}\n", "remotes.storage", "mapping"),
    ],
)
def test_a_bad_value_is_refused_naming_file_key_and_accepted_values(
    repo: Path, local: bool, text: str, key: str, accepted: str
) -> None:
    write_config(repo, text, local=local)
    with pytest.raises(ConfigError) as info:
        config.load_config(repo)
    message = str(info.value)
    assert ("config.local.yaml" if local else "config.yaml") in message
    assert key in message and accepted in message


def test_a_valid_config_in_both_files_still_loads(repo: Path) -> None:
    write_config(
        repo,
        "gart: 1\ncore: {autostage: false, jobs: 256, remote: storage}\n"
        "cache: {dir: cache, type: hardlink, pack_threshold: 0}\n"
        "remotes: {storage: {url: 's3://b/x', endpoint_url: 'http://127.0.0.1:9', anon: true}}\n"
        "aliases: {protected: [production]}\n",
    )
    write_config(repo, "gart: 1\ncore: {jobs: 1}\nremotes: {storage: {key: AKIAX}}\n", local=True)
    cfg = config.load_config(repo)
    assert cfg.jobs == 1 and cfg.autostage is False and cfg.pack_threshold == 0
    assert cfg.remotes["storage"].options == {
        "endpoint_url": "http://127.0.0.1:9", "anon": True, "key": "AKIAX"}


def test_options_for_a_remote_defined_nowhere_name_the_local_file(repo: Path) -> None:
    write_config(repo, "remotes: {ghost: {secret: abc}}\n", local=True)
    with pytest.raises(ConfigError, match="needs a 'url'") as info:
        config.load_config(repo)
    assert "config.local.yaml" in str(info.value) and "abc" not in str(info.value)


def test_a_refused_update_writes_nothing(repo: Path) -> None:
    before = config.config_paths(repo)[0].read_bytes()

    def add_secret(data: dict) -> None:
        data.setdefault("remotes", {})["storage"] = {"url": "s3://b/x", "secret": "abcdef"}

    with pytest.raises(ConfigError, match="remotes.storage.secret"):
        config.update_config(repo, add_secret)
    assert config.config_paths(repo)[0].read_bytes() == before
    config.update_config(repo, add_secret, local=True)  # the local file may hold it
    assert config.load_config(repo).remotes["storage"].options == {"secret": "abcdef"}


def test_error_hints_name_commands_not_files_missing_from_the_installed_package() -> None:
    import ast

    import gitartifacts

    found = []
    for module in sorted(Path(gitartifacts.__file__).parent.glob("*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
            and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
        }
        found += [
            f"{module.name}:{node.lineno}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings and "docs/" in node.value
        ]
    assert found == []


@pytest.mark.parametrize(
    ("data", "problem"),
    [({"gart": 2}, "not supported"), ({"core": {"jbos": 2}}, "did you mean 'jobs'"),
     ({"remotes": {"s": {"url": "s3://b/x", "secret": "abcdef"}}}, "remotes.s.secret")],
)
def test_another_repositorys_config_is_checked_as_a_committed_file(
    tmp_path: Path, data: dict, problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem) as info:
        config.parse_config(tmp_path, data, source="https://host/team/data.git:.gart/config.yaml")
    assert "team/data.git" in str(info.value) and "abcdef" not in str(info.value)
