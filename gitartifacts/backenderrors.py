"""Backend errors -> gart errors: the one place that knows botocore, azure.core, google, aiohttp.

Each fsspec backend speaks its own dialect: s3fs turns botocore's ClientError into builtins
(keeping the original as `__cause__`), gcsfs raises its HttpError or builtins, adlfs wraps
azure.core errors, and aiohttp, ssl and socket errors surface under all of them. `translate`
walks an exception's chain once and returns the one gart error a user can act on
(docs/security-backends.md has the table):

- the bucket/container is missing -> BucketNotFoundError (never "an empty remote")
- credentials refused or absent    -> RemoteAccessError (a PermissionError: never retried)
- no answer / no connection        -> RemoteUnreachableError, naming the endpoint and the limit
- an invalid endpoint_url          -> ConfigError
- an object is absent              -> ObjectNotFoundError
- any other I/O or service failure -> RemoteError with the service's one-line reason

Every message is one line with secrets masked (config.redact). Nothing here imports a backend
library: exceptions are recognised by class name and HTTP status, so this module costs
nothing on the local paths and works whichever backends are installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gitartifacts.config import redact
from gitartifacts.errors import (
    BucketNotFoundError,
    ConfigError,
    GartError,
    ObjectNotFoundError,
    RemoteAccessError,
    RemoteError,
    RemoteUnreachableError,
)

# S3 (and S3-compatible) error codes.
_S3_MISSING_BUCKET = frozenset({"NoSuchBucket"})
_S3_BAD_CREDENTIALS = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
     "TokenRefreshRequired", "AuthorizationHeaderMalformed", "InvalidClientTokenId",
     "UnrecognizedClientException", "InvalidSecurity", "MissingSecurityHeader"}
)
# Azure Storage error codes.
_AZ_MISSING_CONTAINER = frozenset({"ContainerNotFound"})
_AZ_BAD_CREDENTIALS = frozenset(
    {"AuthenticationFailed", "InvalidAuthenticationInfo", "NoAuthenticationInformation"}
)
# Classes that mean "no credentials were found at all".
_NO_CREDENTIALS = frozenset(
    {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError",
     "DefaultCredentialsError", "CredentialUnavailableError"}
)
_TIMEOUTS = frozenset(
    {"TimeoutError", "ReadTimeoutError", "ConnectTimeoutError", "ServerTimeoutError",
     "SocketTimeoutError", "ConnectionTimeoutError", "ServiceRequestTimeoutError",
     "ServiceResponseTimeoutError", "FSTimeoutError", "ReadTimeout", "ConnectTimeout", "timeout"}
)
_CONNECT_TIMEOUTS = frozenset(
    {"ConnectTimeoutError", "ConnectionTimeoutError", "ServiceRequestTimeoutError",
     "ConnectTimeout"}
)
# Failures to establish a connection at all (a connection lost midway is an I/O failure).
_CONNECTION_FAILURES = frozenset(
    {"EndpointConnectionError", "ProxyConnectionError", "ClientConnectorError",
     "ServiceRequestError", "ConnectionRefusedError", "SSLError", "ClientSSLError", "gaierror"}
)
_INVALID_URLS = frozenset({"InvalidURL", "InvalidUrlClientError", "InvalidSchema",
                           "MissingSchema"})
_NETWORK_MODULES = ("botocore", "aiobotocore", "aiohttp", "urllib3", "requests", "azure",
                    "google", "gcsfs", "adlfs", "s3fs", "fsspec", "ssl", "socket")
_MAX_REASON = 160
# Backends whose "not found" errors name a missing bucket (see missing_bucket).
_TELLING_SCHEMES = frozenset({"s3", "s3a", "az", "abfs", "abfss"})


@dataclass(frozen=True)
class Site:
    """Where backend calls go, for messages: the remote's name, URL, endpoint and limits."""

    url: str
    name: str | None = None
    endpoint: str | None = None  # None: the library's default (AWS, Google, Azure)
    bucket: str | None = None
    bucket_word: str = "bucket"  # "container" on Azure
    connect_timeout: float | None = None
    read_timeout: float | None = None

    @property
    def scheme(self) -> str:
        return self.url.partition("://")[0].lower() if "://" in self.url else "file"

    @property
    def remote(self) -> str:
        """`remote 'storage'`, or the URL when the remote has no name."""
        return f"remote {self.name!r}" if self.name else self.url

    @property
    def at(self) -> str:
        """The endpoint, or the URL when requests go to the library's default endpoint."""
        return self.endpoint or self.url

    @property
    def modify(self) -> str:
        """The command prefix that changes this remote's options."""
        return f"gart remote modify {self.name or 'NAME'}"


def translate(exc: BaseException, site: Site, key: str | None = None) -> GartError | None:
    """The gart error for a backend exception on `key`; None when `exc` is no backend failure
    (a programming error, which must surface as itself)."""
    if isinstance(exc, GartError):
        return exc
    where = f"{site.url}/{key}" if key else site.url
    chain = list(_chain(exc))
    error = (
        _missing_bucket(chain, site)
        or _credentials(chain, site, where)
        or _unreachable(chain, site)
        or _invalid_url(chain, site)
    )
    if error is not None:
        return _redacted(error)
    if any(isinstance(e, FileNotFoundError) or _status(e) == 404 for e in chain):
        return _redacted(ObjectNotFoundError(f"{where} does not exist"))
    if isinstance(exc, OSError) or any(_is_network(e) for e in chain):
        return _redacted(RemoteError(f"remote I/O failed on {where}: {reason(exc)}"))
    return None


def missing_bucket(exc: BaseException, scheme: str) -> bool | None:
    """Whether the FileNotFoundError of an empty listing means the bucket itself is absent:
    True or False when the exception can tell, None when the bucket must be asked about.

    s3fs and adlfs keep the service's NoSuchBucket / ContainerNotFound as the cause, and raise
    a bare FileNotFoundError for an empty prefix of a bucket that exists; gcsfs says 404 either
    way."""
    if any(_is_missing_bucket(e) for e in _chain(exc)):
        return True
    if scheme in _TELLING_SCHEMES:
        return False
    return None


def bucket_not_found(site: Site) -> BucketNotFoundError:
    """The error for a remote whose bucket (container) does not exist."""
    scheme = site.scheme
    at = f" at {site.endpoint}" if site.endpoint else ""
    return _redacted(BucketNotFoundError(
        f"{site.bucket_word} {site.bucket!r} does not exist{at} ({site.remote}, {site.url})",
        hint=f"create the {site.bucket_word} first, or point the remote at an existing one: "
        f"`{site.modify} url {scheme}://{site.bucket_word.upper()}/PREFIX`",
    ))


def reason(exc: BaseException) -> str:
    """One short line saying what the backend reported (service code first when it has one)."""
    code = _s3_code(exc) or _azure_code(exc)
    text = _first_line(_message(exc)) or type(exc).__name__
    if code and code not in text:
        text = f"{code}: {text}"
    if len(text) > _MAX_REASON:
        text = text[: _MAX_REASON - 1] + "…"
    return redact(text)


def describe(exc: BaseException) -> str:
    """A one-line reason for a per-object failure report (transfer results)."""
    if isinstance(exc, GartError):
        return exc.message
    translated = translate(exc, Site(url="the remote"))
    if translated is not None and not isinstance(translated, ObjectNotFoundError):
        return translated.message.replace(" (the remote)", "")
    return f"{type(exc).__name__}: {reason(exc)}"


# -- the cases -----------------------------------------------------------------------------


def _missing_bucket(chain: list[BaseException], site: Site) -> GartError | None:
    if site.bucket and any(_is_missing_bucket(e) for e in chain):
        return bucket_not_found(site)
    return None


def _credentials(chain: list[BaseException], site: Site, where: str) -> GartError | None:
    hint = _credentials_hint(site)
    for e in chain:
        names = _names(e)
        if names & _NO_CREDENTIALS:
            return RemoteAccessError(
                f"no credentials found for {site.remote} ({site.url}): {reason(e)}", hint=hint
            )
        code = _s3_code(e) or _azure_code(e)
        status = _status(e)
        refused = (
            code in _S3_BAD_CREDENTIALS or code in _AZ_BAD_CREDENTIALS
            or "ClientAuthenticationError" in names or "RefreshError" in names
            or status == 401
            or (status == 403 and "failed to authenticate" in _message(e).lower())
        )
        if refused:
            return RemoteAccessError(
                f"the credentials of {site.remote} were refused by {site.at}: {reason(e)}",
                hint=hint,
            )
        if status == 403 or code in ("AccessDenied", "AllAccessDisabled", "AccountProblem",
                                     "AuthorizationFailure",
                                     "AuthorizationPermissionMismatch"):
            return RemoteAccessError(
                f"access denied to {where} ({reason(e)})",
                hint=f"check the remote's credentials: they must be allowed to read and write "
                f"{site.url}; {hint}",
            )
    if any(isinstance(e, PermissionError) for e in chain):
        return RemoteAccessError(
            f"access denied to {where}", hint=f"check the remote's credentials; {hint}"
        )
    return None


def _unreachable(chain: list[BaseException], site: Site) -> GartError | None:
    timeout = next((e for e in chain if _names(e) & _TIMEOUTS), None)
    if timeout is not None:
        if _names(timeout) & _CONNECT_TIMEOUTS:
            limit = _seconds(site.connect_timeout)
            return RemoteUnreachableError(
                f"could not connect to {site.at} within {limit} ({site.remote})",
                hint=f"check that the endpoint is up and reachable (`gart remote list` shows "
                f"it); a slow network can have more time: `{site.modify} connect_timeout 30`",
            )
        limit = _seconds(site.read_timeout)
        return RemoteUnreachableError(
            f"{site.at} accepted the connection but did not answer within {limit} "
            f"({site.remote})",
            hint=f"check that the endpoint is the storage service and is up (`gart remote "
            f"list` shows it); a slow service can have more time: `{site.modify} read_timeout 60`",
        )
    failure = next((e for e in chain if _names(e) & _CONNECTION_FAILURES), None)
    if failure is None:
        return None
    text = " ".join(_message(e) for e in chain).lower()
    names = set().union(*(_names(e) for e in chain))
    if "ConnectionRefusedError" in names or "connection refused" in text or "errno 111" in text:
        why = "connection refused"
    elif ({"gaierror", "ClientConnectorDNSError"} & names or "name or service not known" in text
          or "name resolution" in text or "nodename nor servname" in text):
        why = "host name not found"
    elif {"SSLError", "ClientSSLError", "SSLCertVerificationError"} & names or "ssl" in text:
        why = f"TLS failed: {reason(failure)}"
    else:
        why = reason(failure)
    return RemoteUnreachableError(
        f"cannot connect to {site.at} ({site.remote}): {why}",
        hint="check the remote's URL and endpoint_url (`gart remote list`) and the network; "
        f"fix it with `{site.modify} endpoint_url URL`",
    )


def _invalid_url(chain: list[BaseException], site: Site) -> GartError | None:
    for e in chain:
        if _names(e) & _INVALID_URLS or (
                isinstance(e, ValueError) and "invalid endpoint" in _message(e).lower()):
            return ConfigError(
                f"{site.remote} has an invalid endpoint: {reason(e)}",
                hint=f"set a URL such as https://HOST:PORT: `{site.modify} endpoint_url URL`",
            )
    return None


def _credentials_hint(site: Site) -> str:
    scheme, modify = site.scheme, site.modify
    if scheme in ("s3", "s3a"):
        return ("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or choose a profile: "
                f"`{modify} profile NAME`")
    if scheme in ("az", "abfs", "abfss", "adl"):
        return (f"set the account key or SAS token: `{modify} account_key KEY --local` "
                "(or sas_token, connection_string)")
    if scheme in ("gs", "gcs"):
        return (f"point token at a service-account file: `{modify} token PATH --local`, "
                "or set GOOGLE_APPLICATION_CREDENTIALS")
    return f"set the remote's credentials with `{modify} KEY VALUE --local`"


# -- reading exceptions without importing their libraries --------------------------------


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 10:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _is_network(exc: BaseException) -> bool:
    return any((cls.__module__ or "").startswith(_NETWORK_MODULES) for cls in type(exc).__mro__)


def _s3_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def _azure_code(exc: BaseException) -> str | None:
    code = getattr(exc, "error_code", None)
    code = getattr(code, "value", code)  # azure's StorageErrorCode enum
    return str(code) if code else None


def _status(exc: BaseException) -> int | None:
    for attribute in ("status_code", "status", "code"):
        value: Any = getattr(exc, attribute, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        value = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(value, int):
            return value
    return None


def _is_missing_bucket(exc: BaseException) -> bool:
    if _s3_code(exc) in _S3_MISSING_BUCKET or _azure_code(exc) in _AZ_MISSING_CONTAINER:
        return True
    # gcsfs: HttpError(404, "The specified bucket does not exist.")
    return "HttpError" in _names(exc) and _status(exc) == 404 and "bucket" in _message(
        exc).lower()


def _message(exc: BaseException) -> str:
    text = getattr(exc, "message", None)
    if not isinstance(text, str) or not text:
        text = str(exc)
    return text


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _seconds(value: float | None) -> str:
    return f"{value:g} s" if value is not None else "the time limit"


def _redacted(error: GartError) -> Any:
    error.args = (redact(error.message), *error.args[1:])
    if error.hint:
        error.hint = redact(error.hint)
    return error
