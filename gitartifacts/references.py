"""External references (W&B's `add_reference`): bytes that stay at an s3, gs, az, http(s) or
file URI, recorded in the manifest with what pins them (docs/format.md §3.9).

One `Source` per kind of URI:
- `expand` lists a URI (one object, or every object under a prefix) with the metadata the
  listing itself returns — one request per listing page, never a HEAD per object;
- `upstream` tells what each recorded reference looks like at its source now (one listing
  per prefix when many are asked about, one request each when few);
- `open` streams the bytes, of the exact pinned version when a version id was recorded.

`Sources` chooses a source per URI and the filesystem options for it: those of the remote
named by `--ref-options`, else of a configured remote on the same bucket or host, else
none (the backend's own environment: AWS_*, GOOGLE_*, AZURE_*). Credentials never come
from, nor go into, the manifest.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

from gitartifacts.config import RemoteConfig, redact
from gitartifacts.errors import CorruptObjectError, GartError
from gitartifacts.fsutil import temp_name
from gitartifacts.hashing import hash_file
from gitartifacts.manifest import OID_RE, Entry, Reference, check_reference
from gitartifacts.objects import ObjectStore
from gitartifacts.paths import check_relative_path

DEFAULT_MAX_OBJECTS = 10_000  # as W&B; more is an error, never a silent truncation
FEW = 16  # up to this many references of one prefix are checked one by one
CHUNK = 8 << 20
SCHEMES = ("s3", "gs", "az", "http", "https", "file")


class ReferenceError(GartError, OSError):
    """A reference's source could not be listed or read, or no longer holds what was pinned."""


class TooManyObjectsError(ReferenceError):
    """A prefix holds more objects than `max_objects`."""


class Listed(NamedTuple):
    """One object at a source as its listing (or HEAD) describes it."""

    rel: str  # its path relative to the listed prefix ('' for a single object)
    uri: str
    size: int
    pin: tuple[tuple[str, str], ...]  # sorted (key, value) pairs of manifest.PIN_KEYS


@dataclass
class Upstream:
    """What a source holds now for one reference: its current object and known versions."""

    now: Listed | None
    versions: frozenset[str] = frozenset()  # version ids seen (listings of versioned buckets)
    versions_known: bool = False


@dataclass
class RefCheck:
    """One reference compared with its source: ok, changed, overwritten (the pinned version
    is still there), missing, or unknown (the source could not be asked)."""

    ref: Reference
    state: str
    detail: str = ""


def scheme_of(uri: str) -> str:
    return uri.partition("://")[0].lower()


def split_uri(uri: str) -> tuple[str, str, str]:
    """(scheme, bucket or host, key) of a URI."""
    scheme, _, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    return scheme.lower(), bucket, key


def _pin(**values: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, str(v)) for k, v in values.items() if v not in (None, "")))


def _etag(value: Any) -> str | None:
    return str(value).strip('"') if value else None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return redact(text[:300])


# -- sources ------------------------------------------------------------------------------


class Source:
    """How gart lists, checks and reads one kind of URI."""

    def expand(self, uri: str, max_objects: int) -> list[Listed]:
        raise NotImplementedError

    def upstream(self, refs: Sequence[Reference]) -> dict[str, Upstream]:
        raise NotImplementedError

    @contextmanager
    def open(self, ref: Reference, pinned: bool) -> Iterator[IO[bytes]]:
        raise NotImplementedError
        yield  # pragma: no cover

    def reads_bytes_by_default(self) -> bool:
        """checksum=True means reading the bytes (sha256) for file and http; object stores
        pin with the provider's checksum unless asked."""
        return False


def _too_many(uri: str, count: int, max_objects: int, exact: bool) -> TooManyObjectsError:
    amount = f"{count:,}" if exact else f"more than {count - 1:,}"
    return TooManyObjectsError(
        f"{uri} holds {amount} objects, more than max_objects={max_objects:,}",
        hint=f"raise the cap (`--max-objects {count if exact else count * 10}`, or "
        "max_objects= in add_reference), or reference a narrower prefix",
    )


class FsspecSource(Source):
    """s3://, gs:// and az:// through their fsspec filesystems (s3fs, gcsfs, adlfs)."""

    def __init__(self, scheme: str, bucket: str, options: dict[str, Any]) -> None:
        self.scheme = scheme
        self.bucket = bucket
        self.options = options
        self._fs: dict[bool, Any] = {}

    def fs(self, versioned: bool = False) -> Any:
        if versioned not in self._fs:
            from gitartifacts.remote import filesystem

            options = dict(self.options)
            if versioned:
                options["version_aware"] = True
            url = f"{self.scheme}://{self.bucket}"
            try:
                self._fs[versioned] = filesystem(RemoteConfig(f"source {url}", url, options))[0]
            except GartError as exc:
                exc.args = (f"{url}: {exc.message}",)
                raise
        return self._fs[versioned]

    def _uri(self, path: str) -> str:
        return f"{self.scheme}://{path}"

    def _listed(self, rel: str, info: dict[str, Any]) -> Listed:
        name = info["name"]
        if self.scheme == "gs":
            pin = _pin(generation=info.get("generation"), md5=info.get("md5Hash"),
                       crc32c=info.get("crc32c"))
        elif self.scheme == "az":
            pin = _pin(etag=_etag(info.get("etag")), version_id=info.get("version_id"))
        else:
            pin = _pin(etag=_etag(info.get("ETag")), version_id=info.get("VersionId"))
        return Listed(rel, self._uri(name), int(info.get("size") or 0), pin)

    def _fail(self, uri: str, exc: BaseException) -> ReferenceError:
        if isinstance(exc, GartError):
            return ReferenceError(exc.message if uri in exc.message else f"{uri}: {exc.message}",
                                  hint=exc.hint or None)
        return ReferenceError(f"{uri}: {_one_line(exc)}",
                              hint="check the URI and the credentials for it (the "
                              "environment, or --ref-options REMOTE)")

    def expand(self, uri: str, max_objects: int) -> list[Listed]:
        _scheme, bucket, key = split_uri(uri)
        fs = self.fs()
        try:
            if key and not key.endswith("/"):
                try:
                    info = fs.info(f"{bucket}/{key}")
                except FileNotFoundError:
                    info = None
                if info is not None and info.get("type") == "file":
                    return [self._listed("", info)]
                key += "/"
            return self._list(bucket, key, uri, max_objects)
        except ReferenceError:
            raise
        except Exception as exc:  # noqa: BLE001 - any backend failure becomes one line
            raise self._fail(uri, exc) from None

    def _list(self, bucket: str, prefix: str, uri: str, max_objects: int) -> list[Listed]:
        found = self.fs().find(f"{bucket}/{prefix}", detail=True)
        if len(found) > max_objects:
            raise _too_many(uri, len(found), max_objects, exact=True)
        base = f"{bucket}/{prefix}"
        return [self._listed(name[len(base):], info) for name, info in sorted(found.items())
                if info.get("type", "file") == "file" and not name.endswith("/")]

    def upstream(self, refs: Sequence[Reference]) -> dict[str, Upstream]:
        out: dict[str, Upstream] = {}
        if len(refs) <= FEW:
            for ref in refs:
                out[ref.path] = self._head(ref)
            return out
        prefix = _common_dir([split_uri(r.uri)[2] for r in refs])
        listing = self._listing(prefix, versions=any("version_id" in r.pins for r in refs))
        for ref in refs:
            key = split_uri(ref.uri)[2]
            now, versions = listing.get(key, (None, frozenset()))
            out[ref.path] = Upstream(now, versions)  # find() lists current objects only
        return out

    def _listing(self, prefix: str, versions: bool) -> dict[str, tuple[Listed | None,
                                                                       frozenset[str]]]:
        uri = f"{self.scheme}://{self.bucket}/{prefix}"
        try:
            found = self.fs().find(f"{self.bucket}/{prefix}", detail=True)
        except FileNotFoundError:
            found = {}
        except Exception as exc:  # noqa: BLE001
            raise self._fail(uri, exc) from None
        out: dict[str, tuple[Listed | None, frozenset[str]]] = {}
        for name, info in found.items():
            listed = self._listed("", info)
            out[name.partition("/")[2]] = (listed, frozenset())
        return out

    def _head(self, ref: Reference) -> Upstream:
        _scheme, bucket, key = split_uri(ref.uri)
        try:
            info = self.fs().info(f"{bucket}/{key}")
            now = self._listed("", info) if info.get("type") == "file" else None
        except FileNotFoundError:
            now = None
        except Exception as exc:  # noqa: BLE001
            raise self._fail(ref.uri, exc) from None
        version = ref.pins.get("version_id") or ref.pins.get("generation")
        if version and (now is None or dict(now.pin).get("version_id", dict(now.pin).get(
                "generation")) != version):
            try:
                if self.scheme == "gs":
                    info = self.fs(versioned=True).info(f"{bucket}/{key}#{version}")
                else:
                    info = self.fs(versioned=True).info(f"{bucket}/{key}",
                                                        **self._version_kw(version))
                pins = dict(self._listed("", info).pin)
                found = pins.get("version_id") or pins.get("generation")
                return Upstream(now, frozenset({version} if found == version else ()),
                                versions_known=True)
            except FileNotFoundError:
                return Upstream(now, frozenset(), versions_known=True)
            except Exception:  # noqa: BLE001 - cannot tell: the fetch will say
                return Upstream(now)
        return Upstream(now)

    def _version_kw(self, version: str) -> dict[str, Any]:
        return {"generation": version} if self.scheme == "gs" else {"version_id": version}

    @contextmanager
    def open(self, ref: Reference, pinned: bool) -> Iterator[IO[bytes]]:
        _scheme, bucket, key = split_uri(ref.uri)
        version = (ref.pins.get("version_id") or ref.pins.get("generation")) if pinned else None
        try:
            if version:
                handle = self.fs(versioned=True).open(f"{bucket}/{key}", "rb", block_size=CHUNK,
                                                      **self._version_kw(version))
            else:
                handle = self.fs().open(f"{bucket}/{key}", "rb", block_size=CHUNK)
        except FileNotFoundError:
            raise ReferenceError(
                f"{ref.uri}{f' (version {version})' if version else ''}: not found at the source",
                hint="the object was deleted upstream; pass --allow-missing-references to "
                "skip it") from None
        except Exception as exc:  # noqa: BLE001
            raise self._fail(ref.uri, exc) from None
        with handle:
            etag, now = ref.pins.get("etag"), _etag(getattr(handle, "details", {}).get("ETag"))
            if pinned and not version and etag and now and now != etag:
                raise ReferenceError(f"{ref.uri}: changed upstream (ETag {etag} -> {now})",
                                     hint="pass --allow-changed-references to take it as is")
            yield handle


class S3Source(FsspecSource):
    """s3:// through s3fs: listings by ListObjectsV2 (or ListObjectVersions on a versioned
    bucket, for the version ids), 1,000 objects a request."""

    def __init__(self, bucket: str, options: dict[str, Any]) -> None:
        super().__init__("s3", bucket, options)
        self._versioned: bool | None = None

    def versioned(self) -> bool:
        if self._versioned is None:
            try:
                answer = self.fs().call_s3("get_bucket_versioning", Bucket=self.bucket)
                self._versioned = answer.get("Status") in ("Enabled", "Suspended")
            except Exception:  # noqa: BLE001 - not allowed to ask: pin by ETag only
                self._versioned = False
        return self._versioned

    def _pages(self, prefix: str, versions: bool) -> Iterator[dict[str, Any]]:
        method = "list_object_versions" if versions else "list_objects_v2"
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": 1000}
        while True:
            page = self.fs().call_s3(method, **kwargs)
            yield page
            if not page.get("IsTruncated"):
                return
            if versions:
                kwargs["KeyMarker"] = page.get("NextKeyMarker")
                kwargs["VersionIdMarker"] = page.get("NextVersionIdMarker")
            else:
                kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def _rows(self, prefix: str, versions: bool) -> Iterator[tuple[str, dict[str, Any], bool]]:
        """(key, listing row, is the current version) for every object under the prefix."""
        for page in self._pages(prefix, versions):
            if versions:
                for row in page.get("Versions", []):
                    yield row["Key"], row, bool(row.get("IsLatest"))
                for row in page.get("DeleteMarkers", []):
                    if row.get("IsLatest"):
                        yield row["Key"], {**row, "deleted": True}, True
            else:
                for row in page.get("Contents", []):
                    yield row["Key"], row, True

    def _row_listed(self, rel: str, key: str, row: dict[str, Any]) -> Listed:
        version = row.get("VersionId")
        pin = _pin(etag=_etag(row.get("ETag")),
                   version_id=version if version not in (None, "null") else None)
        return Listed(rel, f"s3://{self.bucket}/{key}", int(row.get("Size") or 0), pin)

    def _info_listed(self, info: dict[str, Any]) -> Listed:
        version = info.get("VersionId")
        return Listed("", f"s3://{info['name']}", int(info.get("size") or 0),
                      _pin(etag=_etag(info.get("ETag")),
                           version_id=version if version not in (None, "null") else None))

    def _listed(self, rel: str, info: dict[str, Any]) -> Listed:
        return self._info_listed(info)._replace(rel=rel)

    def _list(self, bucket: str, prefix: str, uri: str, max_objects: int) -> list[Listed]:
        out: list[Listed] = []
        stop = max(max_objects * 100, 1_000_000)
        count = 0
        for key, row, latest in self._rows(prefix, self.versioned()):
            if not latest or row.get("deleted") or key.endswith("/"):
                continue
            count += 1
            if count > max_objects:
                if count >= stop:
                    raise _too_many(uri, count, max_objects, exact=False)
                continue
            out.append(self._row_listed(key[len(prefix):], key, row))
        if count > max_objects:
            raise _too_many(uri, count, max_objects, exact=True)
        return sorted(out)

    def _listing(self, prefix: str, versions: bool) -> dict[str, tuple[Listed | None,
                                                                       frozenset[str]]]:
        versions = versions and self.versioned()
        latest: dict[str, Listed | None] = {}
        seen: dict[str, set[str]] = {}
        try:
            for key, row, is_latest in self._rows(prefix, versions):
                if row.get("deleted"):
                    latest[key] = None
                    continue
                listed = self._row_listed("", key, row)
                if versions and row.get("VersionId"):
                    seen.setdefault(key, set()).add(row["VersionId"])
                if is_latest:
                    latest[key] = listed
        except Exception as exc:  # noqa: BLE001
            raise self._fail(f"s3://{self.bucket}/{prefix}", exc) from None
        keys = set(latest) | set(seen)
        return {k: (latest.get(k), frozenset(seen.get(k, ()))) for k in keys}

    def upstream(self, refs: Sequence[Reference]) -> dict[str, Upstream]:
        out = super().upstream(refs)
        if len(refs) > FEW:  # the listing saw versions only when it listed them
            versions = any("version_id" in r.pins for r in refs) and self.versioned()
            for state in out.values():
                state.versions_known = versions
        return out


class FileSource(Source):
    """file:// paths: a file, or every regular file under a directory (os.scandir walk)."""

    def reads_bytes_by_default(self) -> bool:
        return True

    @staticmethod
    def path_of(uri: str) -> str:
        return urllib.parse.unquote(uri[len("file://"):]) if uri.startswith("file://") else uri

    @staticmethod
    def uri_of(path: str) -> str:
        return "file://" + path

    def _listed(self, rel: str, path: str, st: os.stat_result) -> Listed:
        return Listed(rel, self.uri_of(path), st.st_size, _pin(mtime_ns=st.st_mtime_ns))

    def expand(self, uri: str, max_objects: int) -> list[Listed]:
        root = self.path_of(uri)
        if not os.path.isabs(root):
            raise ReferenceError(f"{uri}: a file:// reference needs an absolute path",
                                 hint="write it as file:///absolute/path")
        try:
            st = os.stat(root)
        except OSError as exc:
            raise ReferenceError(f"{uri}: {exc.strerror or exc}",
                                 hint="check that the path exists and is readable") from None
        if not os.path.isdir(root):
            return [self._listed("", root, st)]
        out: list[Listed] = []
        count = 0
        stack = [root.rstrip("/") or "/"]
        while stack:
            directory = stack.pop()
            try:
                items = list(os.scandir(directory))
            except OSError as exc:
                raise ReferenceError(f"{self.uri_of(directory)}: {exc.strerror or exc}") from None
            for item in items:
                if item.is_dir(follow_symlinks=False):
                    stack.append(item.path)
                elif item.is_file(follow_symlinks=False):
                    count += 1
                    if count <= max_objects:
                        rel = os.path.relpath(item.path, root).replace(os.sep, "/")
                        out.append(self._listed(rel, item.path, item.stat(follow_symlinks=False)))
        if count > max_objects:
            raise _too_many(uri, count, max_objects, exact=True)
        return sorted(out)

    def upstream(self, refs: Sequence[Reference]) -> dict[str, Upstream]:
        out = {}
        for ref in refs:
            path = self.path_of(ref.uri)
            try:
                st = os.stat(path)
                now = self._listed("", path, st) if os.path.isfile(path) else None
            except OSError:
                now = None
            out[ref.path] = Upstream(now)
        return out

    @contextmanager
    def open(self, ref: Reference, pinned: bool) -> Iterator[IO[bytes]]:
        try:
            handle = open(self.path_of(ref.uri), "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise ReferenceError(f"{ref.uri}: {exc.strerror or exc}",
                                 hint="the file was moved or deleted; pass "
                                 "--allow-missing-references to skip it") from None
        with handle:
            yield handle


class HttpSource(Source):
    """http(s):// URLs (one object each) through the standard library: HEAD for ETag,
    Last-Modified and Content-Length, GET for the bytes."""

    def __init__(self, options: dict[str, Any]) -> None:
        headers = options.get("headers") or {}
        self.headers = {str(k): str(v) for k, v in headers.items()} if isinstance(
            headers, dict) else {}
        self.timeout = float(options.get("timeout", 60))

    def reads_bytes_by_default(self) -> bool:
        return True

    def _request(self, uri: str, method: str) -> Any:
        request = urllib.request.Request(uri, method=method, headers=self.headers)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in (404, 410):
                raise FileNotFoundError(uri) from None
            raise ReferenceError(f"{uri}: HTTP {exc.code} {exc.reason}",
                                 hint="check the URL and its credentials (headers in "
                                 "--ref-options REMOTE)") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ReferenceError(f"{uri}: cannot connect ({_one_line(reason)})",
                                 hint="check the URL and the network") from None

    @staticmethod
    def _from_headers(uri: str, headers: Any, size: int | None) -> Listed:
        length = headers.get("Content-Length")
        if size is None:
            size = int(length) if length and length.isdigit() else 0
        return Listed("", uri, size, _pin(etag=_etag(headers.get("ETag")),
                                          last_modified=headers.get("Last-Modified")))

    def expand(self, uri: str, max_objects: int) -> list[Listed]:
        try:
            with self._request(uri, "HEAD") as response:
                listed = self._from_headers(uri, response.headers, None)
        except FileNotFoundError:
            raise ReferenceError(f"{uri}: HTTP 404 not found",
                                 hint="check the URL") from None
        return [listed._replace(rel=posixpath.basename(urllib.parse.urlsplit(uri).path))]

    def upstream(self, refs: Sequence[Reference]) -> dict[str, Upstream]:
        out = {}
        for ref in refs:
            try:
                with self._request(ref.uri, "HEAD") as response:
                    out[ref.path] = Upstream(self._from_headers(ref.uri, response.headers, None))
            except FileNotFoundError:
                out[ref.path] = Upstream(None)
        return out

    @contextmanager
    def open(self, ref: Reference, pinned: bool) -> Iterator[IO[bytes]]:
        try:
            response = self._request(ref.uri, "GET")
        except FileNotFoundError:
            raise ReferenceError(f"{ref.uri}: HTTP 404 not found at the source",
                                 hint="pass --allow-missing-references to skip it") from None
        with response:
            etag = ref.pins.get("etag")
            now = _etag(response.headers.get("ETag"))
            if pinned and etag and now and now != etag:
                raise ReferenceError(f"{ref.uri}: changed upstream (ETag {etag} -> {now})",
                                     hint="pass --allow-changed-references to take it as is")
            yield response


class Sources:
    """One Source per bucket or host, with its options (see the module docstring)."""

    def __init__(self, remotes: dict[str, RemoteConfig] | None = None,
                 explicit: str | None = None) -> None:
        self.remotes = remotes or {}
        self.explicit = explicit
        if explicit is not None and explicit not in self.remotes:
            raise ReferenceError(f"--ref-options: no remote {explicit!r}",
                             hint="define it with `gart remote add NAME URL` (options with "
                             "`gart remote modify NAME KEY VALUE --local`)")
        self._sources: dict[tuple[str, str], Source] = {}

    def options_for(self, uri: str) -> dict[str, Any]:
        if self.explicit is not None:
            return dict(self.remotes[self.explicit].options)
        scheme, bucket, _key = split_uri(uri)
        for remote in self.remotes.values():
            theirs = split_uri(remote.url) if "://" in remote.url else ("file", "", "")
            if theirs[0] in (scheme, scheme + "a") and theirs[1] == bucket:
                return dict(remote.options)
        return {}

    def for_uri(self, uri: str) -> Source:
        scheme, bucket, _key = split_uri(uri)
        if scheme not in SCHEMES:
            raise ReferenceError(f"{uri}: references are s3://, gs://, az://, http(s):// or "
                                 "file:// URIs", hint="check the URI's scheme")
        key = (scheme, "" if scheme == "file" else bucket)
        source = self._sources.get(key)
        if source is None:
            if scheme == "file":
                source = FileSource()
            elif scheme in ("http", "https"):
                source = HttpSource(self.options_for(uri))
            elif scheme == "s3":
                source = S3Source(bucket, self.options_for(uri))
            else:
                source = FsspecSource(scheme, bucket, self.options_for(uri))
            self._sources[key] = source
        return source


# -- recording ----------------------------------------------------------------------------


def expand(
    sources: Sources,
    uri: str,
    name: str | None = None,
    checksum: bool = True,
    max_objects: int | None = None,
    read_bytes: bool | None = None,
    jobs: int = 8,
) -> list[Reference]:
    """The references one `add_reference(uri, name, checksum, max_objects)` records.

    A single object is named `name` (default: its base name); the objects under a prefix
    are named by their path below it, under `name/` when given. checksum=False records the
    URI alone, as W&B (no listing: a prefix stays one entry). `read_bytes` (default: for
    file and http) also records a sha256."""
    limit = DEFAULT_MAX_OBJECTS if max_objects is None else max_objects
    scheme = scheme_of(uri)
    if scheme not in SCHEMES:
        raise ReferenceError(f"{uri}: references are s3://, gs://, az://, http(s):// or file:// "
                             "URIs", hint="check the URI's scheme")
    if not checksum:
        leaf = name or posixpath.basename(uri.rstrip("/")) or split_uri(uri)[1]
        return [check_reference(Reference(_clean(leaf, uri), uri, None, None, (), False))]
    source = sources.for_uri(uri)
    listed = source.expand(uri, limit)
    if not listed:
        raise ReferenceError(f"{uri}: nothing there (no object at that URI or under it)",
                             hint="check the URI; a prefix must hold at least one object")
    single = len(listed) == 1 and listed[0].rel == "" or (
        len(listed) == 1 and scheme in ("http", "https"))
    refs = []
    for item in listed:
        if single:
            path = name or item.rel or posixpath.basename(split_uri(item.uri)[2])
        else:
            path = f"{name.strip('/')}/{item.rel}" if name else item.rel
        refs.append(Reference(_clean(path, item.uri), item.uri, item.size, None, item.pin))
    if read_bytes if read_bytes is not None else source.reads_bytes_by_default():
        refs = _with_sha256(source, refs, jobs)
    return [check_reference(r) for r in refs]


def _clean(path: str, uri: str) -> str:
    try:
        return check_relative_path(path, "reference path")
    except GartError as exc:
        raise ReferenceError(f"{uri}: cannot be named {path!r} in an artifact ({exc.message})",
                             hint="give it a name (add_reference(uri, name=...))") from None


def _with_sha256(source: Source, refs: list[Reference], jobs: int) -> list[Reference]:
    def one(ref: Reference) -> Reference:
        if isinstance(source, FileSource):
            digest, size = hash_file(FileSource.path_of(ref.uri))
        else:
            digest, size = _stream_hash(source, ref, None)
        return ref._replace(sha256=digest, size=size)

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        return list(pool.map(one, refs))


def _stream_hash(source: Source, ref: Reference, sink: IO[bytes] | None,
                 pinned: bool = True) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with source.open(ref, pinned=pinned) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if sink is not None:
                sink.write(chunk)
    return digest.hexdigest(), size


# -- checking -----------------------------------------------------------------------------


def check(sources: Sources, refs: Sequence[Reference], deep: bool = False) -> list[RefCheck]:
    """Compare each reference with its source: one listing per prefix for many, one request
    each for few. `deep` re-reads bytes whose only pin is their sha256 (http without ETag)."""
    groups: dict[Source, list[Reference]] = {}
    for ref in refs:
        groups.setdefault(sources.for_uri(ref.uri), []).append(ref)
    out: list[RefCheck] = []
    for source, group in groups.items():
        states = source.upstream(group)
        for ref in group:
            out.append(_classify(source, ref, states.get(ref.path, Upstream(None)), deep))
    return sorted(out, key=lambda c: c.ref.path)


def _classify(source: Source, ref: Reference, up: Upstream, deep: bool) -> RefCheck:
    version = ref.pins.get("version_id") or ref.pins.get("generation")
    now = up.now
    if not ref.checksum:
        return RefCheck(ref, "ok" if now is not None else "missing")
    same = now is not None and _same(source, ref, now, deep)
    if same:
        return RefCheck(ref, "ok")
    if version:
        if up.versions_known and version not in up.versions:
            return RefCheck(ref, "missing", f"version {version} is gone")
        return RefCheck(ref, "overwritten", "pinned version kept" if up.versions_known
                        else "pinned version")
    if now is None:
        return RefCheck(ref, "missing")
    return RefCheck(ref, "changed", _what_changed(ref, now))


def _same(source: Source, ref: Reference, now: Listed, deep: bool) -> bool:
    pins, current = ref.pins, dict(now.pin)
    if ref.size is not None and now.size != ref.size and not isinstance(source, HttpSource):
        return False
    if isinstance(source, FileSource):
        if pins.get("mtime_ns") == current.get("mtime_ns"):
            return True
        if ref.sha256 is None:
            return False
        return hash_file(FileSource.path_of(ref.uri))[0] == ref.sha256  # touched, same bytes?
    compared = False
    for key in ("version_id", "generation", "etag", "md5", "crc32c", "last_modified"):
        if key in pins and key in current:
            compared = True
            if pins[key] != current[key]:
                return False
    if not compared and ref.sha256 is not None and deep:
        return _stream_hash(source, ref, None)[0] == ref.sha256
    return True


def _what_changed(ref: Reference, now: Listed) -> str:
    pins, current = ref.pins, dict(now.pin)
    for key in ("etag", "generation", "last_modified", "mtime_ns", "md5"):
        if key in pins and pins[key] != current.get(key):
            return f"{key} {pins[key]} -> {current.get(key)}"
    if ref.size != now.size:
        return f"size {ref.size} -> {now.size}"
    return "bytes differ"


# -- fetching into the cache --------------------------------------------------------------


@dataclass
class Materialized:
    """References turned into cache entries for a checkout, and what was left out."""

    entries: list[Entry] = field(default_factory=list)
    skipped: list[RefCheck] = field(default_factory=list)  # allowed missing ones, not placed
    taken_changed: list[RefCheck] = field(default_factory=list)  # allowed changed ones
    downloaded: int = 0
    unresolved: list[Reference] = field(default_factory=list)  # offline: not known locally


class Memo:
    """Which cache object a pinned reference resolved to (`<tmp>/refs/<key>`: 64 hex), so a
    checkout places it again without asking the source. Keyed by the sha256 of the
    reference's canonical line: a different pin is a different key."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    @staticmethod
    def key(ref: Reference) -> str:
        return hashlib.sha256(ref.line().encode("utf-8")).hexdigest()

    def get(self, ref: Reference) -> str | None:
        if ref.sha256 is not None:
            return ref.sha256
        if self.root is None or not ref.checksum:
            return None
        key = self.key(ref)
        try:
            text = (self.root / key[:2] / key).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return text if OID_RE.fullmatch(text) else None

    def put(self, ref: Reference, oid: str) -> None:
        if self.root is None or ref.sha256 is not None or not ref.checksum:
            return
        from gitartifacts.fsutil import atomic_write

        key = self.key(ref)
        try:
            atomic_write(self.root / key[:2] / key, oid.encode("ascii"))
        except OSError:
            pass  # only saves a download


def from_cache(refs: Iterable[Reference], cache: ObjectStore, memo: Memo) -> tuple[
        list[Entry], list[Reference]]:
    """References whose bytes the cache holds (by recorded sha256 or the memo), as entries;
    and the rest."""
    known: dict[str, tuple[Reference, str]] = {}
    rest = []
    for ref in refs:
        oid = memo.get(ref)
        if oid is None:
            rest.append(ref)
        else:
            known[ref.path] = (ref, oid)
    absent = cache.missing({oid for _ref, oid in known.values()}) if known else set()
    entries = []
    for ref, oid in known.values():
        if oid in absent:
            rest.append(ref)
        else:
            entries.append(Entry(ref.path, oid, ref.size if ref.size is not None else 0))
    return entries, rest


def materialize(
    sources: Sources,
    refs: Sequence[Reference],
    cache: ObjectStore,
    memo: Memo,
    allow_changed: bool = False,
    allow_missing: bool = False,
    jobs: int = 8,
    name: str = "",
) -> Materialized:
    """Bring references into the cache, verified, as entries a checkout can place.

    Sources are asked first (one listing per prefix): without a version id, a changed or
    vanished source fails naming every such entry unless allowed. A pinned version id is
    fetched exactly, even after an overwrite. Bytes with a recorded sha256 are verified
    before they enter the cache; checksum=False entries are taken as they are."""
    out = Materialized()
    cached, wanted = from_cache(refs, cache, memo)
    out.entries.extend(cached)
    if not wanted:
        return out
    checks = check(sources, wanted)
    missing = [c for c in checks if c.state == "missing"]
    changed = [c for c in checks if c.state == "changed"]
    problems = []
    if missing and not allow_missing:
        problems.append(("vanished upstream", missing, "--allow-missing-references"))
    if changed and not allow_changed:
        problems.append(("changed upstream", changed, "--allow-changed-references"))
    if problems:
        raise _problem_error(problems, name)
    out.skipped = missing
    out.taken_changed = changed
    todo = [c.ref for c in checks if c.state != "missing"]
    listed_changed = {c.ref.path for c in changed}

    def one(ref: Reference) -> Entry:
        oid, size, mismatch = _download(sources.for_uri(ref.uri), ref, cache, allow_changed)
        if mismatch is not None and ref.path not in listed_changed:
            out.taken_changed.append(RefCheck(ref, "changed", mismatch))
        if mismatch is None:
            memo.put(ref, oid)
        return Entry(ref.path, oid, size)

    failures: list[str] = []
    with ThreadPoolExecutor(max(1, min(jobs, 16))) as pool:
        futures = [(ref, pool.submit(one, ref)) for ref in todo]
        for ref, future in futures:
            try:
                out.entries.append(future.result())
                out.downloaded += 1
            except GartError as exc:
                failures.append(f"{ref.path} ({exc.message})")
    if failures:
        raise ReferenceError(
            f"{len(failures)} reference(s) could not be fetched: {'; '.join(failures)}",
            hint="nothing unverified was placed; fix the source or its credentials and pull "
            "again")
    return out


def _problem_error(problems: list[tuple[str, list[RefCheck], str]], name: str) -> ReferenceError:
    parts = []
    flags = []
    for what, checks, flag in problems:
        listing = ", ".join(
            f"{c.ref.path} ({c.ref.uri}{'; ' + c.detail if c.detail else ''})" for c in checks)
        parts.append(f"{len(checks)} {what}: {listing}")
        flags.append(flag)
    return ReferenceError(
        f"references of {name or 'the artifact'}: " + "; ".join(parts),
        hint=f"re-record them with `gart add --ref URI --name {name or 'NAME'}`, or pull as "
        f"they are now with {' / '.join(flags)}")


def _download(source: Source, ref: Reference, cache: ObjectStore, lenient: bool) -> tuple[
        str, int, str | None]:
    """Stream one reference into the cache, hashing on the way: (oid, size, mismatch). Bytes
    that differ from the recorded sha256 or size enter the cache only when `lenient`."""
    root = cache.local_root
    assert root is not None, "the cache is a local store"
    directory = root / "files" / "sha256"
    directory.mkdir(parents=True, exist_ok=True)
    tmp = Path(temp_name(directory))
    try:
        with open(tmp, "xb") as sink:
            digest, size = _stream_hash(source, ref, sink, pinned=not lenient)
        mismatch = None
        if ref.checksum and ref.sha256 is not None and digest != ref.sha256:
            mismatch = (f"its bytes hash to {digest[:12]}…, not the recorded "
                        f"{ref.sha256[:12]}…")
        elif ref.checksum and ref.size is not None and size != ref.size:
            mismatch = f"{size} bytes, not the recorded {ref.size}"
        if mismatch is not None and not lenient:
            raise CorruptObjectError(f"{ref.uri}: {mismatch} (changed upstream)",
                                     hint="pass --allow-changed-references to take it as is")
        if cache.has(digest):
            tmp.unlink()
        else:
            cache.install_loose(digest, tmp)
        return digest, size, mismatch
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _common_dir(keys: Sequence[str]) -> str:
    """The longest '/'-ended prefix shared by every key ('' for none)."""
    prefix = os.path.commonprefix(list(keys))
    return prefix[: prefix.rfind("/") + 1]


__all__ = [
    "DEFAULT_MAX_OBJECTS", "Listed", "Materialized", "Memo", "RefCheck", "ReferenceError",
    "Sources", "TooManyObjectsError", "check", "expand", "from_cache", "materialize",
]
