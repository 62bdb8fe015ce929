"""External references (issue 12): bytes that stay in S3, GCS, Azure, HTTP or a file share.

Every source is real and on loopback: moto's S3 server (a versioned and an unversioned
bucket), stdlib HTTP servers with and without ETag, file:// directories,
gcp-storage-emulator and azurite (tests/gcs_server.py, tests/azure_server.py). Nothing of
gart's own is mocked."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from azure_server import AzureContainer
from conftest import Project, git, ok, one_error, read_tree, run_gart
from gcs_server import GcsBucket
from http_source import HttpSource, http_source, http_source_plain  # noqa: F401
from s3_server import S3Bucket

from gitartifacts import manifest as mm
from gitartifacts.api import Repo
from gitartifacts.errors import GartError

PLAIN, VERSIONED = "refs-plain", "refs-versioned"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def buckets(s3: S3Bucket) -> S3Bucket:
    """Two more buckets on the moto server: refs-plain and refs-versioned (versioning on)."""
    s3.server.create_bucket(PLAIN)
    s3.server.create_bucket(VERSIONED, versioned=True)
    return s3


def put(s3: S3Bucket, bucket: str, key: str, data: bytes) -> str | None:
    answer = s3.server.client().put_object(Bucket=bucket, Key=key, Body=data)
    s3.server.take()
    return answer.get("VersionId")


def sources(project: Project, s3: S3Bucket) -> None:
    """Remotes whose options (the moto endpoint) gart uses for those buckets' references."""
    for name, bucket in (("src", PLAIN), ("vsrc", VERSIONED)):
        ok(run_gart(project.root, "remote", "add", name, f"s3://{bucket}"))
        ok(run_gart(project.root, "remote", "modify", name, "endpoint_url", s3.endpoint))


def gart(project: Project, *args: str) -> object:
    return run_gart(project.root, *args)


def manifest_of(project: Project, name: str) -> mm.Manifest:
    return mm.loads((project.root / ".gart" / "artifacts" / f"{name}.yaml").read_bytes())


def commit_and_push(project: Project, name: str, message: str) -> str:
    git(project.root, "add", "-A", ".gart")
    git(project.root, "commit", "-q", "-m", message)
    done = ok(run_gart(project.root, "push", name))
    return done.err + done.out


# -- the format ------------------------------------------------------------------------------


def test_stored_only_manifests_keep_format_1_and_their_digest() -> None:
    entries = (mm.Entry("a.txt", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
                        5),)
    stored = mm.Manifest("x", entries=entries)
    text = mm.dumps(stored)
    assert text.startswith("gart: 1\n") and "refs:" not in text
    assert stored.digest == "sha256:" + sha(stored.files_block.encode())


def test_reference_manifests_are_format_3_and_strictly_read() -> None:
    refs = (mm.Reference("b.bin", "s3://bk/b.bin", 5, None, (("version_id", "v1"), ("etag", "e"))),
            mm.Reference("c", "https://example.org/c", None, None, (), False))
    m = mm.Manifest("x", references=refs)
    text = mm.dumps(m)
    assert text.startswith("gart: 3\n")
    back = mm.loads(text)
    assert back == m and back.digest == m.digest and back.count == 2 and back.size == 5
    data = yaml.safe_load(text)
    expected = "sha256:" + sha((data["files"] + "refs\n" + data["refs"]).encode())
    assert m.digest == expected  # the digest covers URI, size and pin
    pinned_other = mm.Manifest("x", references=(refs[0]._replace(pin=(("etag", "f"),)), refs[1]))
    assert pinned_other.digest != m.digest
    # Readers refuse tampering, unknown keys, non-canonical lines and credentials in URIs.
    for bad, why in (
        (text.replace('"etag": "e"', '"etag": "z"'), "digest does not match"),
        (text.replace('"version_id": "v1"}', '"version_id": "v1", "colour": "x"}'), "unknown"),
        (text.replace('{"path": "c", ', '{"path":"c", '), "canonical"),
        (text.replace("https://example.org/c", "https://u:pw@example.org/c"), "credentials"),
        (text.replace("gart: 3", "gart: 1"), "unknown field"),
    ):
        with pytest.raises(mm.ManifestError, match=why):
            mm.loads(bad)


def test_old_readers_refuse_reference_manifests_loudly() -> None:
    # A format-1 reader knows only `gart: 1`: the marker alone makes it refuse (docs §3.7).
    ref = mm.Reference("a", "file:///a", 1, None, (("mtime_ns", "1"),))
    m = mm.Manifest("x", references=(ref,))
    data = yaml.safe_load(mm.dumps(m))
    assert data["gart"] == mm.REFERENCES_FORMAT_VERSION != 1 and "refs" in data
    with pytest.raises(mm.ManifestError, match="gart: 4 is not supported") as refused:
        mm.loads(mm.dumps(m).replace("gart: 3", "gart: 4"))
    assert "upgrade gitartifacts" in refused.value.hint


# -- S3 --------------------------------------------------------------------------------------


def test_s3_prefix_expands_in_listing_pages_without_a_head_per_object(
        project: Project, buckets: S3Bucket) -> None:
    sources(project, buckets)
    for i in range(25):
        put(buckets, PLAIN, f"images/{i % 3}/img{i:03d}.bin", bytes([i]) * (i + 1))
    put(buckets, PLAIN, "images-other/x.bin", b"not under images/")
    buckets.take()
    done = ok(gart(project, "add", "--ref", f"s3://{PLAIN}/images/", "--name", "images-ref"))
    methods = [r.method for r in buckets.take()]
    assert methods.count("HEAD") == 0  # a trailing '/' is a prefix: listed, never probed
    assert methods.count("GET") <= 3  # versioning status + one listing page
    assert "bytes left at the source" in done.err
    m = manifest_of(project, "images-ref")
    assert [r.path for r in m.references][:2] == ["0/img000.bin", "0/img003.bin"]
    assert len(m.references) == 25 and not m.entries and m.path == "artifacts/images-ref"
    first = m.references[0]
    assert first.uri == f"s3://{PLAIN}/images/0/img000.bin" and first.size == 1
    assert set(first.pins) == {"etag"} and first.sha256 is None  # the provider's checksum
    # Without the trailing slash: one HEAD (is it an object?), then the same listing.
    ok(gart(project, "add", "--ref", f"s3://{PLAIN}/images", "--name", "images-ref"))
    assert manifest_of(project, "images-ref").digest == m.digest  # same references: same
    # A single object is named by its base name.
    ok(gart(project, "add", "--ref", f"s3://{PLAIN}/images-other/x.bin", "--name", "one"))
    (ref,) = manifest_of(project, "one").references
    assert ref.path == "x.bin" and ref.size == len(b"not under images/")


def test_more_objects_than_max_objects_is_an_error_naming_the_count(
        project: Project, buckets: S3Bucket, snapshot) -> None:
    sources(project, buckets)
    for i in range(12):
        put(buckets, PLAIN, f"many/{i:02d}", b"x")
    before = snapshot(project.root)
    line = one_error(gart(project, "add", "--ref", f"s3://{PLAIN}/many/", "--name", "many",
                          "--max-objects", "10"))
    assert "holds 12 objects, more than max_objects=10" in line
    assert snapshot(project.root) == before  # nothing written, never a silent truncation
    ok(gart(project, "add", "--ref", f"s3://{PLAIN}/many/", "--name", "many",
            "--max-objects", "12"))
    assert manifest_of(project, "many").count == 12


def test_changed_etag_gives_a_new_version_and_pull_fails_naming_every_entry(
        project: Project, buckets: S3Bucket) -> None:
    sources(project, buckets)
    put(buckets, PLAIN, "d/a.bin", b"alpha")
    put(buckets, PLAIN, "d/b.bin", b"beta")
    put(buckets, PLAIN, "d/c.bin", b"gamma")
    ok(gart(project, "add", "--ref", f"s3://{PLAIN}/d/", "--name", "d"))
    v0 = manifest_of(project, "d")
    commit_and_push(project, "d", "d v0")
    stored = read_tree(project.storage) if project.storage.exists() else {}
    assert not [k for k in stored if k.startswith("files/") or k.startswith("packs/")]
    # pull places the bytes from the source
    ok(gart(project, "pull", "d"))
    assert read_tree(project.root / "artifacts" / "d") == {
        "a.bin": b"alpha", "b.bin": b"beta", "c.bin": b"gamma"}
    ok(gart(project, "status", "d"))
    assert "clean" in gart(project, "status", "d").out
    # upstream changes: a overwritten, b deleted
    put(buckets, PLAIN, "d/a.bin", b"ALPHA!")
    buckets.server.client().delete_object(Bucket=PLAIN, Key="d/b.bin")
    checked = gart(project, "status", "d", "--check-refs")
    assert checked.rc == 1
    assert "changed     a.bin" in checked.out and "missing     b.bin" in checked.out
    js = json.loads(gart(project, "status", "d", "--check-refs", "--json").out)
    assert js == [{"name": "d", "references": 3, "changed": ["a.bin"], "missing": ["b.bin"],
                   "overwritten": []}]
    # a fresh place: pull of v0 fails naming every such entry
    import shutil

    shutil.rmtree(project.root / "artifacts" / "d")
    shutil.rmtree(project.root / ".gart" / "cache")
    line = one_error(gart(project, "pull", "d@v0"))
    assert "a.bin" in line and "b.bin" in line and "c.bin" not in line
    assert "--allow-missing-references" in gart(project, "pull", "d@v0").err
    assert not (project.root / "artifacts" / "d").exists()
    line = one_error(gart(project, "pull", "d@v0", "--allow-missing-references"))
    assert "changed upstream" in line and "b.bin" not in line
    done = ok(gart(project, "pull", "d@v0", "--allow-missing-references",
                   "--allow-changed-references"))
    assert "b.bin" in done.err and "vanished upstream" in done.err
    assert read_tree(project.root / "artifacts" / "d") == {"a.bin": b"ALPHA!", "c.bin": b"gamma"}
    # re-recording gives a new digest, hence a new version
    ok(gart(project, "add", "--ref", f"s3://{PLAIN}/d/", "--name", "d"))
    v1 = manifest_of(project, "d")
    assert v1.digest != v0.digest and [r.path for r in v1.references] == ["a.bin", "c.bin"]
    assert "published v1" in commit_and_push(project, "d", "d v1")


def test_a_pinned_version_id_is_fetched_after_an_upstream_overwrite(
        project: Project, buckets: S3Bucket) -> None:
    sources(project, buckets)
    first = put(buckets, VERSIONED, "m/model.pt", b"weights v1")
    put(buckets, VERSIONED, "m/config.json", b"{}")
    ok(gart(project, "add", "--ref", f"s3://{VERSIONED}/m/", "--name", "model"))
    refs = {r.path: r for r in manifest_of(project, "model").references}
    assert refs["model.pt"].pins["version_id"] == first
    commit_and_push(project, "model", "model v0")
    # Overwrite and delete upstream: the versions stay in the bucket.
    put(buckets, VERSIONED, "m/model.pt", b"weights v2 (overwritten)")
    buckets.server.client().delete_object(Bucket=VERSIONED, Key="m/config.json")
    checked = gart(project, "status", "model", "--check-refs")
    assert checked.rc == 0, checked.out  # overwritten, but the pinned versions are kept
    assert "overwritten model.pt" in checked.out.replace("  ", " ")
    done = ok(gart(project, "pull", "model@v0"))
    assert read_tree(project.root / "artifacts" / "model") == {
        "model.pt": b"weights v1", "config.json": b"{}"}
    assert "error" not in done.err


def test_push_of_a_reference_artifact_uploads_nothing(project: Project, buckets: S3Bucket) -> None:
    sources(project, buckets)
    put(buckets, PLAIN, "p/x.bin", b"x" * 100)
    ok(gart(project, "add", "--ref", f"s3://{PLAIN}/p/", "--name", "p"))
    out = commit_and_push(project, "p", "p")
    assert "Pushed 0 object(s)" in out and "published v0" in out
    assert not [k for k in read_tree(project.storage) if not k.startswith(".")] \
        if project.storage.exists() else True


def test_to_remote_streams_the_bytes_into_the_remote_once(project: Project,
                                                          buckets: S3Bucket) -> None:
    sources(project, buckets)
    put(buckets, PLAIN, "t/a.bin", b"copied once")
    done = ok(gart(project, "add", "--ref", f"s3://{PLAIN}/t/", "--name", "t", "--to-remote"))
    assert "1 object(s) uploaded" in done.err
    m = manifest_of(project, "t")
    assert not m.references and m.entries == (mm.Entry("a.bin", sha(b"copied once"), 11),)
    assert (project.root / ".gart" / "artifacts" / "t.yaml").read_text().startswith("gart: 1")
    loose = project.storage / "files" / "sha256"
    packed = list((project.storage / "packs").glob("*.pack")) if (
        project.storage / "packs").exists() else []
    assert (loose / sha(b"copied once")[:2]).exists() or packed
    out = commit_and_push(project, "t", "t")
    assert "Pushed 0 object(s)" in out  # already there


def test_ref_options_names_the_remote_whose_options_read_the_source(
        project: Project, buckets: S3Bucket) -> None:
    put(buckets, PLAIN, "o/a.bin", b"a")
    # No remote on that bucket: the environment has no endpoint, so name one explicitly.
    ok(gart(project, "remote", "add", "moto", "s3://somewhere-else"))
    ok(gart(project, "remote", "modify", "moto", "endpoint_url", buckets.endpoint))
    ok(gart(project, "add", "--ref", f"s3://{PLAIN}/o/", "--name", "o", "--ref-options", "moto"))
    assert manifest_of(project, "o").count == 1
    line = one_error(gart(project, "add", "--ref", f"s3://{PLAIN}/o/", "--name", "o",
                          "--ref-options", "nope"))
    assert "no remote 'nope'" in line
    text = (project.root / ".gart" / "artifacts" / "o.yaml").read_text()
    assert buckets.endpoint not in text  # options never go into the manifest


def test_an_unreachable_source_is_one_line_naming_the_uri(project: Project) -> None:
    line = one_error(run_gart(project.root, "add", "--ref", "http://127.0.0.1:9/x.csv",
                              "--name", "x"))
    assert "http://127.0.0.1:9/x.csv" in line and "cannot connect" in line
    ok(gart(project, "remote", "add", "dead", "s3://dead-bucket"))
    ok(gart(project, "remote", "modify", "dead", "endpoint_url", "http://127.0.0.1:9"))
    line = one_error(run_gart(project.root, "add", "--ref", "s3://dead-bucket/x/", "--name", "x"))
    assert "s3://dead-bucket" in line


# -- HTTP ------------------------------------------------------------------------------------


def test_http_with_etag_records_sha256_and_detects_changes(
        project: Project, http_source: HttpSource) -> None:  # noqa: F811
    url = http_source.put("data/labels.csv", b"a,b\n1,2\n")
    ok(gart(project, "add", "--ref", url, "--name", "labels"))
    (ref,) = manifest_of(project, "labels").references
    assert ref.path == "labels.csv" and ref.sha256 == sha(b"a,b\n1,2\n") and ref.size == 8
    assert set(ref.pins) == {"etag", "last_modified"}
    commit_and_push(project, "labels", "labels")
    ok(gart(project, "pull", "labels"))
    assert (project.root / "artifacts/labels/labels.csv").read_bytes() == b"a,b\n1,2\n"
    http_source.put("data/labels.csv", b"a,b\n3,4\n")
    assert gart(project, "status", "--check-refs").rc == 1
    import shutil

    shutil.rmtree(project.root / ".gart" / "cache")
    line = one_error(gart(project, "pull", "labels@v0", "--force"))
    assert "labels.csv" in line and "changed upstream" in line
    http_source.delete("data/labels.csv")
    line = one_error(gart(project, "pull", "labels@v0", "--force"))
    assert "vanished upstream" in line and url in line


def test_http_without_etag_is_verified_by_its_sha256_before_placing(
        project: Project, http_source_plain: HttpSource) -> None:  # noqa: F811
    url = http_source_plain.put("f.bin", b"original")
    ok(gart(project, "add", "--ref", url, "--name", "f"))
    (ref,) = manifest_of(project, "f").references
    assert ref.pin == () and ref.sha256 == sha(b"original")
    http_source_plain.put("f.bin", b"replaced")  # same size, no validator to tell
    assert gart(project, "status", "--check-refs").rc == 1  # re-read: bytes differ
    line = one_error(gart(project, "pull", "f"))
    assert url in line and "changed upstream" in line
    assert not (project.root / "artifacts" / "f" / "f.bin").exists()  # never placed
    ok(gart(project, "pull", "f", "--allow-changed-references"))
    assert (project.root / "artifacts/f/f.bin").read_bytes() == b"replaced"


# -- file:// and mixed -----------------------------------------------------------------------


def test_file_share_prefix_and_a_mixed_artifact_round_trip(project: Project,
                                                          tmp_path: Path) -> None:
    share = tmp_path / "share"
    (share / "corpus" / "sub").mkdir(parents=True)
    (share / "corpus" / "a.txt").write_bytes(b"alpha")
    (share / "corpus" / "sub" / "b.txt").write_bytes(b"beta")
    (share / "extra.parquet").write_bytes(b"PAR1")
    data = project.root / "data"
    data.mkdir()
    (data / "local.csv").write_bytes(b"stored")
    ok(gart(project, "add", "data", "--ref", f"file://{share}/extra.parquet", "--name", "mixed"))
    m = manifest_of(project, "mixed")
    assert [e.path for e in m.entries] == ["local.csv"]
    assert [r.path for r in m.references] == ["extra.parquet"]
    assert m.references[0].sha256 == sha(b"PAR1") and "mtime_ns" in m.references[0].pins
    ok(gart(project, "add", "--ref", f"file://{share}/corpus/", "--name", "corpus"))
    assert [r.path for r in manifest_of(project, "corpus").references] == ["a.txt", "sub/b.txt"]
    out = commit_and_push(project, "mixed", "mixed")
    assert "Pushed 1 object(s)" in out  # the stored file only
    ok(gart(project, "pull", "mixed"))
    assert read_tree(data) == {"local.csv": b"stored", "extra.parquet": b"PAR1"}
    # status: the reference's pulled copy is not an added file; a re-add keeps the reference
    assert "clean" in gart(project, "status", "mixed").out
    (data / "local.csv").write_bytes(b"stored v2")
    ok(gart(project, "add", "data", "--name", "mixed"))
    m2 = manifest_of(project, "mixed")
    assert [r.path for r in m2.references] == ["extra.parquet"] and len(m2.entries) == 1
    # a checkout from the cache places the reference again without the share
    (share / "extra.parquet").unlink()
    (data / "extra.parquet").unlink()
    ok(gart(project, "checkout", "mixed"))
    assert (data / "extra.parquet").read_bytes() == b"PAR1"
    # and a clone elsewhere, with the share gone, fails naming it
    import shutil

    shutil.rmtree(project.root / ".gart" / "cache")
    (data / "extra.parquet").unlink()
    line = one_error(gart(project, "pull", "mixed@v0", "--force"))
    assert "extra.parquet" in line and "vanished upstream" in line


# -- the W&B door ----------------------------------------------------------------------------


def test_wandb_add_reference_ref_target_and_download(project: Project, buckets: S3Bucket,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    import gitartifacts as wandb

    sources(project, buckets)
    put(buckets, PLAIN, "w/shard-0.bin", b"zero")
    put(buckets, PLAIN, "w/shard-1.bin", b"one")
    share = tmp_path / "notes.txt"
    share.write_bytes(b"notes")
    monkeypatch.chdir(project.root)
    with wandb.init(project="refs", job_type="ingest") as run:
        art = wandb.Artifact("shards", type="dataset")
        art.add_reference(f"s3://{PLAIN}/w/", name="shards")
        art.add_reference(f"file://{share}", checksum=False)
        logged = run.log_artifact(art)
    assert logged.version == "v0"
    with wandb.init(job_type="train") as run:
        used = run.use_artifact("shards:latest")
        entry = used.get_path("shards/shard-0.bin")
        assert entry.ref_target() == f"s3://{PLAIN}/w/shard-0.bin" and entry.size == 4
        assert used.get_path("notes.txt").ref_target() == f"file://{share}"
        root = Path(used.download(root=str(tmp_path / "dl")))
        assert read_tree(root) == {"shards/shard-0.bin": b"zero", "shards/shard-1.bin": b"one",
                                   "notes.txt": b"notes"}
        used.verify(str(root))
        share.unlink()  # checksum=False: existence only
        with pytest.raises(GartError, match="notes.txt"):
            used.download(root=str(tmp_path / "dl2"))
        again = Path(used.download(root=str(tmp_path / "dl3"), allow_missing_references=True))
        assert sorted(read_tree(again)) == ["shards/shard-0.bin", "shards/shard-1.bin"]
    m = Repo(project.root).load_manifest("shards")
    assert [r.checksum for r in m.references] == [False, True, True]


# -- GCS (gcp-storage-emulator through gcsfs) ------------------------------------------------


def test_gcs_prefix_records_generation_and_fetches_it(project: Project, gcs: GcsBucket) -> None:
    fs = gcs.fs()
    fs.pipe({f"{gcs.bucket}/g/a.bin": b"ga", f"{gcs.bucket}/g/b.bin": b"gb"})
    ok(gart(project, "remote", "add", "gsrc", f"gs://{gcs.bucket}"))
    for key, value in gcs.options.items():
        ok(gart(project, "remote", "modify", "gsrc", key, str(value), "--local"))
    ok(gart(project, "add", "--ref", f"gs://{gcs.bucket}/g/", "--name", "g"))
    refs = manifest_of(project, "g").references
    assert [r.path for r in refs] == ["a.bin", "b.bin"]
    assert "generation" in refs[0].pins
    ok(gart(project, "pull", "g"))
    assert read_tree(project.root / "artifacts" / "g") == {"a.bin": b"ga", "b.bin": b"gb"}
    fs.pipe({f"{gcs.bucket}/g/a.bin": b"changed"})
    assert gart(project, "status", "--check-refs").rc == 1


# -- Azure (azurite through adlfs) -----------------------------------------------------------


def test_azure_prefix_records_its_etag_and_a_change_upstream_is_seen(
    project: Project, azure: AzureContainer
) -> None:
    fs = azure.fs()
    fs.pipe({f"{azure.container}/raw/a.bin": b"aa", f"{azure.container}/raw/b.bin": b"bb"})
    ok(gart(project, "remote", "add", "asrc", f"az://{azure.container}"))
    for key, value in azure.options.items():
        ok(gart(project, "remote", "modify", "asrc", key, str(value), "--local"))
    ok(gart(project, "add", "--ref", f"az://{azure.container}/raw/", "--name", "raw-az"))
    refs = manifest_of(project, "raw-az").references
    assert [r.path for r in refs] == ["a.bin", "b.bin"]
    assert "etag" in refs[0].pins
    ok(gart(project, "pull", "raw-az"))
    assert read_tree(project.root / "artifacts" / "raw-az") == {"a.bin": b"aa", "b.bin": b"bb"}
    fs.pipe({f"{azure.container}/raw/a.bin": b"changed"})
    changed = gart(project, "status", "--check-refs")
    assert changed.rc == 1 and "a.bin" in changed.out + changed.err
