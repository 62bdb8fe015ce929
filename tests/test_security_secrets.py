"""Secrets never reach a committed file, never load from one, and never appear in gart's output."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import GartResult, git

from gitartifacts import config

Gart = Callable[..., GartResult]
SECRET = "wJalrXUtnFEMI-K7MDENG"


def committed(repo: Path) -> str:
    return (repo / ".gart" / "config.yaml").read_text(encoding="utf-8")


def assert_clean_failure(result: GartResult, *secrets: str) -> None:
    assert result.rc != 0 and "Traceback" not in result.err
    for secret in secrets:
        assert secret not in result.out and secret not in result.err


def add_storage(gart: Gart) -> None:
    assert gart("remote", "add", "storage", "s3://team-bucket/gart", "--default").rc == 0


# -- writing: only options known to be safe go to config.yaml ------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("endpoint_url", f"http://admin:{SECRET}@127.0.0.1:9000"),
        ("endpoint_url", f"https://{SECRET}@minio.example.com"),
        ("profile", f"https://ci:{SECRET}@proxy.example.com"),  # any value that is a URL
        ("endpoint_url", f"https://acct.blob.core.windows.net/c?sv=2022-11-02&sig={SECRET}"),
    ],
)
def test_a_url_with_credentials_is_not_written_to_the_committed_config(
    repo: Path, gart: Gart, key: str, value: str
) -> None:
    add_storage(gart)
    before = committed(repo)
    result = gart("remote", "modify", "storage", key, value)
    assert_clean_failure(result, SECRET)
    assert "credentials" in result.err and "--local" in result.err
    assert committed(repo) == before
    assert gart("remote", "modify", "storage", key, value, "--local").rc == 0
    assert SECRET not in committed(repo)


@pytest.mark.parametrize(
    "key",
    ["client_secret", "client_id", "tenant_id", "account_key", "sas_token", "connection_string",
     "credential", "password", "username", "api_key", "SecretAccessKey", "auth_token",
     "private_key", "client_kwargs", "config_kwargs", "s3_additional_kwargs", "some_new_option"],
)
def test_an_option_not_known_to_be_safe_is_accepted_only_with_local(
    repo: Path, gart: Gart, key: str
) -> None:
    assert gart("remote", "add", "azure", "memory://container/gart", "--default").rc == 0
    before = committed(repo)
    result = gart("remote", "modify", "azure", key, SECRET)
    assert_clean_failure(result, SECRET)
    assert "--local" in result.err and key in result.err
    assert committed(repo) == before
    assert gart("remote", "modify", "azure", key, SECRET, "--local").rc == 0
    assert SECRET not in committed(repo)


@pytest.mark.parametrize(
    ("key", "value"),
    [("endpoint_url", "http://127.0.0.1:9000"), ("region", "eu-west-1"), ("profile", "ci"),
     ("anon", "true"), ("requester_pays", "true"), ("version_aware", "false"),
     ("account_name", "teamstore"), ("project", "team-project")],
)
def test_options_known_to_be_safe_may_be_committed(
    repo: Path, gart: Gart, key: str, value: str
) -> None:
    assert gart("remote", "add", "storage", "memory://bucket/gart").rc == 0
    assert gart("remote", "modify", "storage", key, value).rc == 0
    assert f"{key}: " in committed(repo)


def test_no_option_that_looks_like_a_credential_is_on_the_safe_list() -> None:
    assert not [name for name in config.SAFE_OPTIONS if config.looks_secret(name)]


# -- reading: a committed config.yaml that carries a secret is refused ---------------------


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (f"    url: https://user:{SECRET}@example.com/gart\n", "remotes.storage.url"),
        (f"    url: https://{SECRET}@example.com/gart\n", "remotes.storage.url"),
        (f"    url: s3://b/x\n    endpoint_url: http://admin:{SECRET}@127.0.0.1:9\n",
         "remotes.storage.endpoint_url"),
        (f"    url: s3://b/x\n    client_secret: {SECRET}\n", "remotes.storage.client_secret"),
        (f"    url: s3://b/x\n    secret: {SECRET}\n", "remotes.storage.secret"),
        (f"    url: s3://b/x\n    client_kwargs: {{aws_secret_access_key: {SECRET}}}\n",
         "remotes.storage.client_kwargs"),
        (f"    url: s3://b/x\n    endpoint_url: 'https://h/?sig={SECRET}'\n",
         "remotes.storage.endpoint_url"),
    ],
)
def test_a_committed_config_with_a_secret_is_refused_on_load(
    repo: Path, gart: Gart, body: str, key: str
) -> None:
    (repo / ".gart" / "config.yaml").write_text(
        f"gart: 1\ncore: {{remote: storage}}\nremotes:\n  storage:\n{body}", encoding="utf-8")
    for args in (("remote", "list"), ("remote", "list", "--json"), ("status",), ("push",)):
        result = gart(*args)
        assert_clean_failure(result, SECRET)
        first = result.err.splitlines()[0]
        assert "config.yaml" in first and key in first, result.err
        assert "config.local.yaml" in result.err  # the way out


def test_the_same_secret_in_config_local_yaml_loads(repo: Path, gart: Gart) -> None:
    (repo / ".gart" / "config.yaml").write_text(
        "gart: 1\nremotes:\n  storage:\n    url: s3://b/x\n", encoding="utf-8")
    (repo / ".gart" / "config.local.yaml").write_text(
        f"remotes:\n  storage:\n    client_secret: {SECRET}\n", encoding="utf-8")
    assert gart("remote", "list").rc == 0
    git(repo, "check-ignore", "-q", ".gart/config.local.yaml")


# -- output: gart remote list and every error are redacted ---------------------------------


def test_remote_list_never_prints_a_secret_from_config_local_yaml(repo: Path, gart: Gart) -> None:
    add_storage(gart)
    (repo / ".gart" / "config.local.yaml").write_text(
        "remotes:\n  storage:\n"
        f"    endpoint_url: http://admin:{SECRET}@127.0.0.1:9000\n"
        f"    client_secret: {SECRET}-a\n"
        f"    client_kwargs: {{aws_secret_access_key: {SECRET}-b}}\n"
        f"    some_new_option: {SECRET}-c\n"
        "    profile: ci\n",
        encoding="utf-8",
    )
    plain = gart("remote", "list")
    assert plain.rc == 0 and SECRET not in plain.out + plain.err
    assert "profile=ci" in plain.out and "http://admin:***@127.0.0.1:9000" in plain.out
    as_json = gart("remote", "list", "--json")
    assert as_json.rc == 0 and SECRET not in as_json.out + as_json.err
    (row,) = json.loads(as_json.out)
    assert row["options"] == {
        "endpoint_url": "http://admin:***@127.0.0.1:9000", "client_secret": "***",
        "client_kwargs": "***", "some_new_option": "***", "profile": "ci",
    }


@pytest.mark.parametrize(
    "url", ["https://user:TOKEN1234@127.0.0.1:1/x.git", "https://TOKEN1234@127.0.0.1:1/x.git",
            "https://x-access-token:TOKEN1234@127.0.0.1:1/team/data.git"],
)
@pytest.mark.parametrize("command", [("pull", "raw"), ("versions", "raw")])
def test_a_repo_url_token_is_not_repeated_in_errors(
    repo: Path, gart: Gart, url: str, command: tuple[str, ...]
) -> None:
    result = gart(*command, "--repo", url)
    assert_clean_failure(result, "TOKEN1234")
    assert "127.0.0.1:1" in result.err  # still says where


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fetching https://user:pa55word@host/x.git failed",
         "fetching https://user:***@host/x.git failed"),
        ("'https://ghp_abcdef123@github.com/team/x'", "'https://***@github.com/team/x'"),
        ("s3://AKIA:se@cr@et@bucket/x", "s3://AKIA:***@bucket/x"),
        ("ssh://git@host/srv/x and git@github.com:team/x", "ssh://git@host/srv/x and "
         "git@github.com:team/x"),
        ("no url here", "no url here"),
        ("GET https://a.blob.core.windows.net/c?sv=2022&sig=AbC%2F12&se=2030 denied",
         "GET https://a.blob.core.windows.net/c?sv=2022&sig=***&se=2030 denied"),
        ("s3://b/k?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=beef",
         "s3://b/k?X-Amz-Credential=***&X-Amz-Signature=***"),
    ],
)
def test_redact_masks_credentials_in_urls(text: str, expected: str) -> None:
    assert config.redact(text) == expected


def test_redact_masks_secret_values_gart_loaded(repo: Path) -> None:
    (repo / ".gart" / "config.yaml").write_text(
        "gart: 1\nremotes:\n  storage:\n    url: s3://b/x\n", encoding="utf-8")
    (repo / ".gart" / "config.local.yaml").write_text(
        f"remotes:\n  storage:\n    client_secret: {SECRET}\n    profile: ci-profile\n",
        encoding="utf-8")
    config.load_config(repo)
    assert config.redact(f"denied for {SECRET} (ci-profile)") == "denied for *** (ci-profile)"


def test_the_safe_options_are_the_ones_the_format_spec_lists() -> None:
    spec = (Path(__file__).resolve().parents[1] / "docs" / "format.md").read_text()
    listed = spec[spec.index("may hold only these remote options"):]
    listed = listed[:listed.index("Every other option")]
    assert set(re.findall(r"`([a-z_]+)`", listed)) == set(config.SAFE_OPTIONS)
