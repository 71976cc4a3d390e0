"""Remote inputs: one place that opens ``s3://``, ``gs://``, ``http(s)://`` and ``simplecache::``
URLs.

Everything gridflux reads from object storage or a web server goes through this module:

* :func:`filesystem` builds the fsspec filesystem of a URL with a per-request timeout injected
  (aiohttp ``ClientTimeout`` for HTTP, botocore ``connect_timeout``/``read_timeout`` for S3), so
  that a stalled server never hangs a run;
* :func:`call_with_retries` retries *transient* errors -- connection reset/refused/dropped,
  HTTP 5xx/429/408, S3 ``SlowDown``/``InternalError``, timeouts, a response shorter than it said --
  with exponential backoff (jittered) and a limit; anything else (404, 403, a bad file) fails at
  once;
* :class:`RemoteFile` is a read-only, seekable, picklable file object over byte-range requests,
  each request retried and checked for length, with an LRU block cache (fsspec's ``BlockCache``).
  A truncated object is an :class:`~gridflux.errors.InputError` naming the URL, never a hang or
  garbage;
* :func:`open_netcdf` / :func:`open_zarr` open a remote netCDF (engine ``h5netcdf`` over a
  :class:`RemoteFile`, or a local cached copy) or a zarr store (fsspec mapper wrapped in a
  retrying zarr store);
* :func:`cached_copy` downloads a whole object once into a local cache directory (``simplecache::``
  chaining, or ``remote.cache: true``) with the same retries, verifying its size before it is used.

Settings come from the packaged defaults (``gridflux.remote.*`` in ``gridflux.yaml``), overridable
by the user's dask config, ``DASK_GRIDFLUX__REMOTE__*`` variables or ``gridflux.set_options``.

Credentials: storage options (keys, tokens) are passed by the caller in memory, from the user's
environment or credential chain (``AWS_*`` variables, ``~/.aws``, instance roles, ``gcloud`` ...).
They are never written to catalogs, the store, provenance or logs; error messages and log lines
go through :func:`scrub`, which removes URL user-info, signed-URL query tokens and any
storage-option value that looks like a secret.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import hashlib
import io
import json
import logging
import os
import random
import re
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from gridflux import config
from gridflux.errors import InputError
from gridflux.ingest import objectstore

log = logging.getLogger(__name__)

T = TypeVar("T")

#: URL prefixes of fsspec's caching layers that gridflux understands (whole-file caching).
CACHE_PROTOCOLS = ("simplecache", "filecache", "blockcache")
#: Storage-option keys whose values are secrets (scrubbed from every message).
SECRET_KEYS = (
    "key",
    "secret",
    "token",
    "password",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "session_token",
    "access_key",
    "secret_key",
    "client_secret",
    "sas_token",
    "account_key",
    "credential",
    "credentials",
    "auth",
    "headers",
)
#: Blocks of ``remote.block-size`` bytes that a process keeps for the small reads of remote files.
CACHE_BLOCKS = 16
#: Bytes of blocks a process keeps (smaller metadata blocks: more of them, same memory).
CACHE_BYTES = CACHE_BLOCKS * 2 * 2**20
_BLOCKS: OrderedDict[tuple, bytes] = OrderedDict()
_BLOCKS_LOCK = threading.Lock()
#: Keyword arguments of ``xr.open_dataset`` that :func:`open_netcdf` hands to ``xr.decode_cf``.
DECODE_KWARGS = (
    "mask_and_scale",
    "decode_times",
    "decode_timedelta",
    "concat_characters",
    "decode_coords",
    "use_cftime",
    "drop_variables",
)
#: The largest byte range one request of :func:`fetch_ranges` asks for (longer ranges are split so
#: that they run concurrently).
MAX_REQUEST = 8 * 2**20
#: Values of ``remote.client``: how requests of ``s3://`` objects are sent.
CLIENTS = ("auto", "fsspec")
_POOL: Any = None
_POOL_KEY: tuple[int, int] | None = None
_POOL_LOCK = threading.Lock()
_HTTP_PROTOCOLS = ("http", "https")
_S3_PROTOCOLS = ("s3", "s3a")
_RETRY_HTTP_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_RETRY_S3_CODES = frozenset(
    {
        "500",
        "502",
        "503",
        "504",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "Throttling",
        "ThrottlingException",
    }
)
_RETRY_ERRNO = frozenset(
    {
        errno.ECONNRESET,
        errno.ECONNREFUSED,
        errno.ECONNABORTED,
        errno.ETIMEDOUT,
        errno.EPIPE,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EAGAIN,
    }
)


# -- policy -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RemotePolicy:
    """How remote reads behave (all times in seconds, sizes in bytes).

    Attributes
    ----------
    retries : retries after the first attempt of one request (0 = no retry)
    backoff : wait before the first retry; doubled for each further retry (times a jitter in [0.5,
    1]) backoff_max : longest wait between two attempts
    timeout : longest wait for data from a peer (connect excluded) before a request is abandoned
    connect_timeout : longest wait to establish a connection
    block_size : bytes per range request and per cached block of a :class:`RemoteFile`
    cache : cache every remote netCDF input as a whole local file (``simplecache::`` URLs always
    are) cache_dir : directory of the local cache; None = ``<tmp>/gridflux-cache``
    concurrency : range requests in flight at once per process (:func:`fetch_ranges`: the byte
        ranges of a block read by chunk)
    metadata_block_size : bytes per request and cached block of the HDF5 metadata reads of a
        netCDF file read by chunk (its header, coordinates and chunk index; the field's bytes
        are fetched as exact ranges)
    read_ahead : time blocks of a remote series a task reads while it computes the current one
        (:mod:`gridflux.pipeline.readahead`: their requests' round trips overlap); 0: none
    client : ``auto`` (requests of ``s3://`` objects through obstore where
        :func:`gridflux.ingest.objectstore.s3_store` maps the storage options, else s3fs) or
        ``fsspec`` (always s3fs); see :data:`CLIENTS`
    """

    retries: int = 5
    backoff: float = 0.5
    backoff_max: float = 30.0
    timeout: float = 60.0
    connect_timeout: float = 10.0
    block_size: int = 2 * 2**20
    cache: bool = False
    cache_dir: str | None = None
    concurrency: int = 16
    metadata_block_size: int = 256 * 2**10
    read_ahead: int = 2
    client: str = "auto"

    def __post_init__(self) -> None:
        if self.client not in CLIENTS:
            raise ValueError(
                f"remote.client={self.client!r} is not a client; expected one of {list(CLIENTS)}"
            )

    @classmethod
    def from_config(cls, **overrides: Any) -> RemotePolicy:
        """The policy of the current configuration (``gridflux.remote.*``), with overrides."""

        def c(key: str, default: Any) -> Any:
            # one key at a time: dask.config.get takes ``read-ahead`` and ``read_ahead`` alike (a
            # DASK_GRIDFLUX__REMOTE__READ_AHEAD variable arrives as ``read_ahead``)
            return config.get(f"remote.{key}", default)

        pol = cls(
            retries=int(c("retries", cls.retries)),
            backoff=float(c("backoff", cls.backoff)),
            backoff_max=float(c("backoff-max", cls.backoff_max)),
            timeout=float(c("timeout", cls.timeout)),
            connect_timeout=float(c("connect-timeout", cls.connect_timeout)),
            block_size=int(c("block-size", cls.block_size)),
            cache=bool(c("cache", cls.cache)),
            cache_dir=c("cache-dir", None) or None,
            concurrency=max(1, int(c("concurrency", cls.concurrency))),
            metadata_block_size=int(c("metadata-block-size", cls.metadata_block_size)),
            read_ahead=max(0, int(c("read-ahead", cls.read_ahead))),
            client=str(c("client", cls.client)),
        )
        return replace(pol, **overrides) if overrides else pol

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0-based)."""
        return min(self.backoff * 2.0**attempt, self.backoff_max) * (0.5 + 0.5 * random.random())

    def cache_root(self, storage_options: Mapping[str, Any] | None = None) -> str:
        """The cache directory: ``storage_options['simplecache']['cache_storage']``, else
        ``remote.cache-dir``, else ``<tmp>/gridflux-cache``."""
        for layer in CACHE_PROTOCOLS:
            sub = (storage_options or {}).get(layer)
            if isinstance(sub, Mapping) and sub.get("cache_storage"):
                return os.path.expanduser(str(sub["cache_storage"]))
        if self.cache_dir:
            return os.path.expanduser(self.cache_dir)
        return os.path.join(tempfile.gettempdir(), "gridflux-cache")


# -- URLs and secrets -------------------------------------------------------------------------
def is_remote(path: str) -> bool:
    """True for a URL that is not a local file (``s3://``, ``https://``, ``simplecache::...``)."""
    p = os.fspath(path)
    if "::" in p:
        return True
    return "://" in p and not p.startswith("file://")


def split_chain(url: str) -> tuple[str | None, str]:
    """``("simplecache", "s3://b/k")`` for ``simplecache::s3://b/k``; ``(None, url)`` otherwise.

    Raises
    ------
    InputError
        For chains gridflux does not read (e.g. ``zip::``, ``reference::``): a catalog cannot
        choose an arbitrary fsspec layer.
    """
    if "::" not in url:
        return None, url
    parts = url.split("::")
    layers, target = parts[:-1], parts[-1]
    bad = [p for p in layers if p not in CACHE_PROTOCOLS]
    if bad or len(layers) > 1:
        raise InputError(
            f"URL chain {'::'.join(layers)!r} is not supported; expected one of "
            f"{[c + '::' for c in CACHE_PROTOCOLS]} in front of a URL",
            path=scrub(url),
            attribute="path",
        )
    return layers[0], target


def protocol_of(url: str) -> str:
    """The fsspec protocol of an unchained URL (``file`` for a local path)."""
    return url.split("://", 1)[0].lower() if "://" in url else "file"


#: Query parameters whose values are secrets (masked as ``***`` in messages, dropped from
#: identities): AWS SigV4/SigV2 and GCS signed URLs, Azure SAS, CloudFront, generic tokens and keys.
SECRET_QUERY_PARAMS = frozenset(
    {
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "awsaccesskeyid",
        "signature",
        "x-goog-signature",
        "x-goog-credential",
        "googleaccessid",
        "sig",
        "sas",
        "policy",
        "key-pair-id",
        "token",
        "access_token",
        "id_token",
        "refresh_token",
        "key",
        "apikey",
        "api_key",
        "api-key",
        "password",
        "passwd",
        "secret",
        "client_secret",
        "auth",
        "authorization",
    }
)
#: Query parameters that carry no secret but change whenever a URL is signed again (dates, expiry,
#: signed headers, Azure SAS fields): left out of a URL's identity with the secret ones.
SIGNING_QUERY_PARAMS = frozenset(
    {
        "x-amz-algorithm",
        "x-amz-date",
        "x-amz-expires",
        "x-amz-signedheaders",
        "x-goog-algorithm",
        "x-goog-date",
        "x-goog-expires",
        "x-goog-signedheaders",
        "expires",
        # Azure SAS (https://learn.microsoft.com/rest/api/storageservices/create-service-sas)
        "sv",
        "ss",
        "srt",
        "sp",
        "se",
        "st",
        "spr",
        "sr",
        "si",
        "sdd",
        "ses",
        "skoid",
        "sktid",
        "skt",
        "ske",
        "sks",
        "skv",
        "saoid",
        "suoid",
        "scid",
    }
)
# user-info: everything between "scheme://" and the last "@" of the authority (a password may
# hold a raw "@")
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/\s?#'\"]*@")
_QUERY_SECRET = re.compile(
    r"(?i)(?P<k>[?&;](?:"
    + "|".join(re.escape(k) for k in sorted(SECRET_QUERY_PARAMS, key=len, reverse=True))
    + r")=)[^&#\s'\"<>)\]]+"
)


def _secrets(storage_options: Mapping[str, Any] | None) -> list[str]:
    out: list[str] = []

    def walk(obj: Any, key: str = "") -> None:
        if isinstance(obj, Mapping):
            for k, v in obj.items():
                walk(v, str(k).lower())
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                walk(v, key)
        elif isinstance(obj, str) and len(obj) >= 4 and any(s in key for s in SECRET_KEYS):
            out.append(obj)

    walk(storage_options or {})
    return sorted(set(out), key=len, reverse=True)


#: secret values of every storage options this process loaded (:func:`load_storage_options`):
#: :func:`scrub` hides them in every text, also where the options themselves are not at hand
#: (a ``--debug`` traceback, an exception message that repeats a key)
LOADED_SECRETS: set[str] = set()


def scrub(text: str, storage_options: Mapping[str, Any] | None = None) -> str:
    """``text`` without URL user-info, signed-URL tokens and secret storage-option values (of
    ``storage_options`` and of every storage options loaded by :func:`load_storage_options`).

    The one scrubbing function of gridflux: every message, log line, error, summary and manifest
    string that may hold a URL goes through it (or :func:`scrub_tree`). User-info becomes ``***@``
    and the value of every query parameter in :data:`SECRET_QUERY_PARAMS` becomes ``***``, so a
    reader still sees that a URL was signed or credentialed.
    """
    text = _USERINFO.sub(lambda m: m.group("scheme") + "***@", str(text))
    text = _QUERY_SECRET.sub(lambda m: m.group("k") + "***", text)
    secrets = set(_secrets(storage_options)) | LOADED_SECRETS
    for s in sorted(secrets, key=len, reverse=True):
        text = text.replace(s, "***")
    return text


def url_identity(url: str) -> str:
    """What identifies the object behind ``url``, for fingerprints and the manifest: the URL without
    user-info and without the query parameters of signing (secrets, dates, expiry; see
    :data:`SECRET_QUERY_PARAMS`, :data:`SIGNING_QUERY_PARAMS`). Other query parameters (e.g. a
    ``versionId``) stay, in their order. Signing the same URL again gives the same identity, so
    re-signed inputs are not recomputed.

    >>> url_identity("https://u:p@h.org/a.nc?versionId=3&X-Amz-Signature=ab&X-Amz-Date=2026")
    'https://h.org/a.nc?versionId=3'
    """
    from urllib.parse import parse_qsl, urlencode

    text = _USERINFO.sub(lambda m: m.group("scheme"), str(url))
    if "?" not in text or "://" not in text:
        return text
    base, _, rest = text.partition("?")
    query, hash_, frag = rest.partition("#")
    drop = SECRET_QUERY_PARAMS | SIGNING_QUERY_PARAMS
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k.lower() not in drop]
    out = base + ("?" + urlencode(kept) if kept else "")
    return out + (hash_ + frag if hash_ else "")


def scrub_tree(obj: Any, storage_options: Mapping[str, Any] | None = None) -> Any:
    """A copy of a JSON-like ``obj`` (dicts, lists, strings, numbers) with every string scrubbed:
    a string that is one URL becomes its :func:`url_identity`, any other string goes through
    :func:`scrub`. Used where records leave the process (the store's manifest, run summaries) and
    to compare a series' fingerprint with the one recorded in the manifest."""
    if isinstance(obj, str):
        if "://" in obj and not any(c.isspace() for c in obj):
            return scrub(url_identity(obj), storage_options)
        return scrub(obj, storage_options)
    if isinstance(obj, Mapping):
        return {
            scrub_tree(k, storage_options): scrub_tree(v, storage_options) for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [scrub_tree(v, storage_options) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float)):
        return obj
    return scrub(str(obj), storage_options)  # what json.dumps(default=str) would write


#: Environment variables that hold storage options (JSON, or ``@path`` of a JSON file) when the
#: command line gives none: inputs, and the store.
STORAGE_OPTIONS_ENV = "GRIDFLUX_STORAGE_OPTIONS"
STORE_OPTIONS_ENV = "GRIDFLUX_STORE_OPTIONS"


def load_storage_options(text: str | None, env: str | None = None) -> dict[str, Any] | None:
    """Storage options from a command-line value or, when it is empty, the variable ``env``.

    ``text`` is ``@path`` (a JSON file, e.g. ``@~/.config/gridflux/s3.json`` with mode 600) or an
    inline JSON object. Secrets (keys, tokens, passwords: :data:`SECRET_KEYS`) are refused inline,
    because a process's arguments are visible to every user of the machine (``ps``): they belong
    in a file, in the environment variable, in fsspec's own configuration (``FSSPEC_S3_KEY`` ...,
    ``~/.config/fsspec/``) or in the provider's credential chain (``AWS_*``, ``~/.aws``).

    Raises
    ------
    ValueError
        Not JSON, not an object, a file that cannot be read, or inline secrets (the message says
        what to do instead and never repeats the value).
    """
    source = "the command line"
    if not text and env:
        text, source = os.environ.get(env) or None, f"${env}"
    if not text:
        return None
    text = text.strip()
    inline = not text.startswith("@")
    if not inline:
        path = os.path.expanduser(text[1:])
        source = path
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise ValueError(f"{path}: cannot read the storage options ({exc.strerror})") from None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{source}: storage options are not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(
            f"{source}: storage options must be a JSON object such as '{{\"anon\": true}}'"
        )
    if inline and source == "the command line" and _secrets(value):
        raise ValueError(
            "secrets (key, secret, token, password ...) on the command line are visible to every "
            "user of the machine (ps); put the options in a file and pass '@FILE', or set "
            f"${env or STORAGE_OPTIONS_ENV}, or use fsspec's configuration or the provider's "
            "credential chain (docs/ingest.md)"
        )
    LOADED_SECRETS.update(_secrets(value))
    return value


# -- filesystems ------------------------------------------------------------------------------
def options_for(url: str, storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The fsspec options for ``url``'s protocol.

    ``storage_options`` is either flat (``{"anon": True}`` applies to every remote URL) or has
    per-protocol sections (``{"s3": {...}, "https": {...}}``) that win for their protocol. Sections
    of caching layers (``simplecache``) are not passed to the target filesystem.
    """
    so = dict(storage_options or {})
    proto = protocol_of(split_chain(url)[1])
    aliases = {
        "https": ("https", "http"),
        "http": ("http", "https"),
        "s3": ("s3", "s3a"),
        "s3a": ("s3a", "s3"),
        "gs": ("gs", "gcs"),
        "gcs": ("gcs", "gs"),
    }.get(proto, (proto,))
    known = {"http", "https", "s3", "s3a", "gs", "gcs", "file", "abfs", "az", *CACHE_PROTOCOLS}
    flat = {k: v for k, v in so.items() if not (k in known and isinstance(v, Mapping))}
    for name in aliases:
        if isinstance(so.get(name), Mapping):
            flat.update(so[name])
            break
    return flat


def with_timeouts(url: str, options: Mapping[str, Any], policy: RemotePolicy) -> dict[str, Any]:
    """``options`` plus the policy's connect/read timeouts in the form the protocol's library takes
    (the user's own settings win)."""
    opts = dict(options)
    proto = protocol_of(url)
    if proto in _HTTP_PROTOCOLS:
        import aiohttp

        ck = dict(opts.get("client_kwargs") or {})
        ck.setdefault(
            "timeout",
            aiohttp.ClientTimeout(
                total=None, sock_connect=policy.connect_timeout, sock_read=policy.timeout
            ),
        )
        opts["client_kwargs"] = ck
    elif proto in _S3_PROTOCOLS:
        ck = dict(opts.get("config_kwargs") or {})
        ck.setdefault("connect_timeout", policy.connect_timeout)
        ck.setdefault("read_timeout", policy.timeout)
        # botocore retries transient errors per API call; gridflux retries around them too
        ck.setdefault("retries", {"max_attempts": max(1, policy.retries + 1), "mode": "standard"})
        # room for the concurrent range requests of a block read (botocore's default pool is 10)
        ck.setdefault("max_pool_connections", max(10, 2 * policy.concurrency))
        opts["config_kwargs"] = ck
    return opts


def filesystem(
    url: str, storage_options: Mapping[str, Any] | None = None, policy: RemotePolicy | None = None
):
    """``(fs, path)`` of an unchained URL, with the policy's timeouts (see
    :func:`with_timeouts`)."""
    import fsspec

    policy = policy or RemotePolicy.from_config()
    _, target = split_chain(url)
    opts = with_timeouts(target, options_for(url, storage_options), policy)
    return fsspec.core.url_to_fs(target, **opts)


def object_store(
    url: str, storage_options: Mapping[str, Any] | None = None, policy: RemotePolicy | None = None
):
    """The obstore store that requests of the unchained ``url`` go through, or None (s3fs or
    another fsspec filesystem): obstore only for ``remote.client: auto`` and ``s3://`` URLs whose
    storage options :func:`gridflux.ingest.objectstore.s3_store` maps faithfully, with the
    policy's timeouts and without obstore's own retries (cached per process)."""
    policy = policy or RemotePolicy.from_config()
    if policy.client == "fsspec" or protocol_of(url) not in _S3_PROTOCOLS:
        return None
    return objectstore.s3_store(
        url,
        options_for(url, storage_options),
        connect_timeout=policy.connect_timeout,
        timeout=policy.timeout,
    )


# -- retries ----------------------------------------------------------------------------------
class ShortReadError(IOError):
    """A response carried fewer bytes than requested within the object's declared size."""


def _chain(exc: BaseException):
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen or len(seen) > 16:
            continue
        seen.add(id(e))
        yield e
        todo += [e.__cause__, e.__context__]


def is_transient(exc: BaseException) -> bool:
    """Whether an error is worth retrying: dropped/refused/reset connections, timeouts, HTTP 5xx,
    429 and 408, S3 throttling and internal errors, short reads. Missing objects, denied access and
    malformed files are not."""
    for e in _chain(exc):
        if isinstance(
            e, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
        ):
            # fsspec's HTTP ``info`` reports any failed HEAD/GET (also a 503) as FileNotFoundError
            # raised *from* the real error: look at the cause; a bare one is a real "not found"
            if e.__cause__ is None:
                return False
            continue
        if isinstance(e, (ShortReadError, ConnectionError, TimeoutError, asyncio.TimeoutError)):
            return True
        if isinstance(e, OSError) and e.errno in _RETRY_ERRNO:
            return True
        if objectstore.is_obstore_error(e):
            return objectstore.is_transient(
                e, _RETRY_HTTP_STATUS, frozenset(c for c in _RETRY_S3_CODES if not c.isdigit())
            )
        try:
            import aiohttp
        except ImportError:  # pragma: no cover - aiohttp comes with fsspec[http]/s3fs
            aiohttp = None
        if aiohttp is not None:
            if isinstance(e, aiohttp.ClientResponseError):
                return e.status in _RETRY_HTTP_STATUS
            if isinstance(e, (aiohttp.ClientSSLError, aiohttp.InvalidURL)):
                return False
            if isinstance(
                e,
                (
                    aiohttp.ClientPayloadError,
                    aiohttp.ClientConnectionError,
                    aiohttp.ServerTimeoutError,
                ),
            ):
                return True
        try:
            import botocore.exceptions as bex
        except ImportError:  # pragma: no cover
            bex = None
        if bex is not None:
            if isinstance(e, bex.ClientError):
                err = (getattr(e, "response", None) or {}).get("Error", {})
                status = (
                    (getattr(e, "response", None) or {})
                    .get("ResponseMetadata", {})
                    .get("HTTPStatusCode")
                )
                return (
                    str(err.get("Code", "")) in _RETRY_S3_CODES
                    or (status or 0) in _RETRY_HTTP_STATUS
                )
            if isinstance(
                e,
                (
                    bex.EndpointConnectionError,
                    bex.ConnectionClosedError,
                    bex.ReadTimeoutError,
                    bex.ConnectTimeoutError,
                    bex.IncompleteReadError,
                    bex.ResponseStreamingError,
                ),
            ):
                return True
    return False


def _range_not_satisfiable(exc: BaseException) -> bool:
    """Whether an s3fs error is S3's ``InvalidRange`` (HTTP 416: the object ends before the range
    starts)."""
    for e in _chain(exc):
        response = getattr(e, "response", None)
        if isinstance(response, Mapping):
            if str((response.get("Error") or {}).get("Code", "")) == "InvalidRange":
                return True
    return False


class RemoteReadError(InputError):
    """A remote read failed: after the retries of a transient error, or at once for a permanent
    one."""


def call_with_retries(
    fn: Callable[[], T],
    *,
    url: str,
    what: str,
    policy: RemotePolicy | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> T:
    """``fn()``, retrying transient errors (see :func:`is_transient`) ``policy.retries`` times with
    exponential backoff. Permanent errors are raised unchanged (``FileNotFoundError`` ...).

    Raises
    ------
    RemoteReadError
        When the retries are exhausted: names the (scrubbed) URL, what was being done, the number
        of attempts and the last error.
    """
    policy = policy or RemotePolicy.from_config()
    for attempt in range(policy.retries + 1):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - classified in _backoff
            time.sleep(_backoff(exc, attempt, policy, url, what, storage_options))
    raise AssertionError("unreachable: the last attempt raises in _backoff")


def _backoff(
    exc: Exception,
    attempt: int,
    policy: RemotePolicy,
    url: str,
    what: str,
    storage_options: Mapping[str, Any] | None,
) -> float:
    """Seconds to wait before retrying after ``exc`` on ``attempt``; raises ``exc`` itself when it
    is permanent, and :class:`RemoteReadError` when the retries are used up (shared by the sync and
    async retry loops)."""
    if not is_transient(exc):
        raise exc
    if attempt == policy.retries:
        if isinstance(exc, ShortReadError):
            msg = (
                f"{what}: {exc}; the object is truncated or the server keeps cutting the response "
                f"({policy.retries + 1} attempts)"
            )
        else:
            msg = (
                f"{what} failed after {policy.retries + 1} attempts (transient errors are retried "
                f"remote.retries={policy.retries} times with backoff); last error: {_describe(exc)}"
            )
        raise RemoteReadError(
            scrub(msg, storage_options), path=scrub(url, storage_options)
        ) from exc
    wait = policy.delay(attempt)
    log.info(
        "%s: %s failed (%s); retry %d of %d in %.2f s",
        scrub(url, storage_options),
        what,
        scrub(_describe(exc), storage_options),
        attempt + 1,
        policy.retries,
        wait,
    )
    return wait


def _describe(exc: BaseException | None) -> str:
    """``Type: message`` of an error; for fsspec's FileNotFoundError raised from a failed request,
    the request's own error (e.g. ``ClientResponseError: 503, message='Service Unavailable'``)."""
    if exc is None:
        return "unknown error"
    if isinstance(exc, FileNotFoundError) and exc.__cause__ is not None:
        exc = exc.__cause__
    if objectstore.is_obstore_error(exc):
        return f"{type(exc).__name__}: {objectstore.describe(exc)}"
    text = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {text}"


async def acall_with_retries(
    make: Callable[[], Any],
    *,
    url: str,
    what: str,
    policy: RemotePolicy,
    storage_options: Mapping[str, Any] | None = None,
) -> Any:
    """Async :func:`call_with_retries`: awaits ``make()`` under
    ``asyncio.wait_for(policy.timeout)``."""
    for attempt in range(policy.retries + 1):
        try:
            return await asyncio.wait_for(make(), timeout=policy.timeout + policy.connect_timeout)
        except Exception as exc:  # noqa: BLE001 - classified in _backoff
            await asyncio.sleep(_backoff(exc, attempt, policy, url, what, storage_options))
    raise AssertionError("unreachable: the last attempt raises in _backoff")


# -- metadata ---------------------------------------------------------------------------------
#: the objects' ``info`` already asked in this thread's :func:`info_once` scope (None: no scope)
_INFO_MEMO: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "gridflux_info_memo", default=None
)


@contextmanager
def info_once() -> Iterator[None]:
    """Within this scope (of the calling thread) :func:`info` asks the server about each object
    once: later calls for the same URL and storage options answer from the first (errors are not
    remembered). A run uses it while it lasts: a file is fingerprinted, checked for daily steps
    and opened for planning, each of which needed the object's size, one request of a round trip
    each; the answers of one run are taken as one view of its inputs (as its fingerprints are).
    Nested scopes share the outermost one. Also a decorator (each call its own scope)."""
    if _INFO_MEMO.get() is not None:
        yield
        return
    token = _INFO_MEMO.set({})
    try:
        yield
    finally:
        _INFO_MEMO.reset(token)


def info(
    url: str, storage_options: Mapping[str, Any] | None = None, policy: RemotePolicy | None = None
) -> dict:
    """fsspec ``info`` of a remote object (size, ETag, modification time), with retries (asked
    once per object within an :func:`info_once` scope).

    Raises
    ------
    InputError
        If the object does not exist (naming the URL), or the retries are exhausted.
    """
    memo = _INFO_MEMO.get()
    key = (url, repr(sorted((storage_options or {}).items()))) if memo is not None else None
    if memo is not None and key in memo:
        return dict(memo[key])
    policy = policy or RemotePolicy.from_config()
    store = object_store(url, storage_options, policy)
    if store is not None:
        bucket, okey = objectstore.s3_location(url) or ("", "")
        ask: Callable[[], dict] = lambda: objectstore.head(store, bucket, okey)  # noqa: E731
    else:
        fs, path = filesystem(url, storage_options, policy)
        ask = lambda: fs.info(path)  # noqa: E731
    try:
        got = call_with_retries(
            ask,
            url=url,
            what="metadata request",
            policy=policy,
            storage_options=storage_options,
        )
    except FileNotFoundError as exc:
        raise InputError(
            "file not found", path=scrub(url, storage_options), attribute="path"
        ) from exc
    if memo is not None:
        memo[key] = dict(got)
    return got


def read_bytes(
    url: str, storage_options: Mapping[str, Any] | None = None, policy: RemotePolicy | None = None
) -> bytes:
    """The whole content of a (small) remote object, e.g. a catalog, read with retries and checked
    against the object's declared size (through obstore: one GET, whose body must have the size
    its response declares; else a metadata request, then range requests).

    Raises
    ------
    InputError
        If the object does not exist (naming the URL), or the retries are exhausted.
    """
    policy = policy or RemotePolicy.from_config()
    _, target = split_chain(url)
    store = object_store(target, storage_options, policy)
    if store is not None:
        _, okey = objectstore.s3_location(target) or ("", "")

        def once() -> bytes:
            data, size = objectstore.get_whole(store, okey)
            if len(data) != size:
                raise ShortReadError(f"got {len(data)} of a declared {size}-byte object")
            return data

        try:
            return call_with_retries(
                once, url=target, what="download", policy=policy, storage_options=storage_options
            )
        except FileNotFoundError as exc:
            raise InputError(
                "file not found", path=scrub(target, storage_options), attribute="path"
            ) from exc
    f = RemoteFile(target, storage_options, policy)
    try:
        return f.read()
    finally:
        f.close()


# -- a robust remote file ---------------------------------------------------------------------
class RemoteFile(io.RawIOBase):
    """Read-only, seekable file over byte-range requests, each retried and length-checked.

    Parameters
    ----------
    url : an unchained remote URL
    storage_options : fsspec options (credentials stay in memory; pickled only to dask workers)
    policy : retries, timeouts and block size (default: current configuration)
    size : object size in bytes if already known (saves a metadata request)

    Small reads (HDF5 metadata, small chunks) go through a block cache shared by the process
    (``policy.block_size`` bytes per request, at most :data:`CACHE_BYTES` bytes in all, least
    recently used evicted), so that reopening the same object -- which xarray does when dask
    tokenizes or unpickles a dataset opened on a file object -- costs no new request, and memory
    does not grow with the number of open files. A read of ``block_size`` bytes or more is one
    request of exactly that range, not cached.
    A response shorter than requested within the declared size is retried; if it stays short, a
    :class:`RemoteReadError` names the URL and the missing bytes. Pickling sends the URL, options,
    policy and size (not the cache), so an xarray dataset opened on a ``RemoteFile`` can be
    computed on dask workers.
    """

    def __init__(
        self,
        url: str,
        storage_options: Mapping[str, Any] | None = None,
        policy: RemotePolicy | None = None,
        size: int | None = None,
    ) -> None:
        super().__init__()
        self.url = url
        self._so = dict(storage_options or {})
        self.policy = policy or RemotePolicy.from_config()
        self._fs: Any = None
        self._store = object_store(url, self._so, self.policy)
        if self._store is not None:
            self.path = (objectstore.s3_location(url) or ("", ""))[1]  # the key in the bucket
        else:
            self._fs, self.path = filesystem(url, self._so, self.policy)
        self.requests = 0  # range requests this object sent (retries included)
        self.bytes_fetched = 0  # bytes those requests returned
        self._count_lock = threading.Lock()
        if size is None:
            meta = info(url, self._so, self.policy)
            size = meta.get("size")
        self._whole: bytes | None = None
        if size is None:  # a server that does not say how long the object is: read it whole
            self._whole = call_with_retries(
                lambda: self.fs.cat_file(self.path),
                url=url,
                what="download",
                policy=self.policy,
                storage_options=self._so,
            )
            size = len(self._whole)
        self.size = int(size)
        self.pos = 0

    @property
    def fs(self):
        """The fsspec filesystem of the URL (built on first use when requests go through
        obstore)."""
        if self._fs is None:
            self._fs, _ = filesystem(self.url, self._so, self.policy)
        return self._fs

    @property
    def client(self) -> str:
        """``obstore`` or ``fsspec``: what sends this file's requests."""
        return "fsspec" if self._store is None else "obstore"

    def _block(self, i: int) -> bytes:
        """Block ``i`` of the object, from the process-wide cache or one (retried) request."""
        bs = self.policy.block_size
        key = (self.url, self.size, bs, i)
        with _BLOCKS_LOCK:
            hit = _BLOCKS.get(key)
            if hit is not None:
                _BLOCKS.move_to_end(key)
                return hit
        data = self.fetch(i * bs, (i + 1) * bs)
        with _BLOCKS_LOCK:
            _BLOCKS[key] = data
            held = sum(len(b) for b in _BLOCKS.values())
            while held > CACHE_BYTES and len(_BLOCKS) > 1:
                held -= len(_BLOCKS.popitem(last=False)[1])
        return data

    def cached(self, start: int, end: int) -> bytes | None:
        """Bytes ``[start, end)`` if the process's block cache holds all of them (no request),
        else None."""
        bs = self.policy.block_size
        parts = []
        with _BLOCKS_LOCK:
            for i in range(start // bs, (max(end, start + 1) - 1) // bs + 1):
                hit = _BLOCKS.get((self.url, self.size, bs, i))
                if hit is None:
                    return None
                parts.append(hit)
        off = start - start // bs * bs
        return b"".join(parts)[off : off + (end - start)]

    def _read_blocks(self, start: int, end: int) -> bytes:
        bs = self.policy.block_size
        b0, b1 = start // bs, (end - 1) // bs
        parts = [self._block(i) for i in range(b0, b1 + 1)]
        buf = parts[0] if len(parts) == 1 else b"".join(parts)
        off = start - b0 * bs
        return buf[off : off + (end - start)]

    def fetch(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` (clamped to the size) in one request, retried and checked for
        length; not cached. Thread-safe."""
        end = min(end, self.size)
        if start >= end:
            return b""
        if self._whole is not None:
            return self._whole[start:end]
        want = end - start

        def once() -> bytes:
            if self._store is not None:
                data = objectstore.get_range(self._store, self.path, start, end)
            else:
                try:
                    data = self.fs.cat_file(self.path, start=start, end=end)
                except OSError as exc:
                    if not _range_not_satisfiable(exc):
                        raise
                    data = b""  # the object ends before ``start``: shorter than declared
            with self._count_lock:
                self.requests += 1
                self.bytes_fetched += len(data)
            if len(data) == self.size and want != self.size:  # server ignored the Range header
                data = data[start:end]
            if len(data) != want:
                raise ShortReadError(
                    f"got {len(data)} of {want} bytes at offset {start} of a declared "
                    f"{self.size}-byte object"
                )
            return data

        return call_with_retries(
            once,
            url=self.url,
            what=f"read of bytes {start}-{end - 1}",
            policy=self.policy,
            storage_options=self._so,
        )

    # -- file protocol -------------------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self.pos + offset
        elif whence == io.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"whence must be 0, 1 or 2, not {whence!r}")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self.pos = pos
        return pos

    def read(self, n: int = -1) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        end = self.size if n is None or n < 0 else min(self.size, self.pos + n)
        if end <= self.pos:
            data = b""
        elif end - self.pos >= self.policy.block_size:
            data = self.fetch(self.pos, end)
        else:
            data = self._read_blocks(self.pos, end)
        self.pos += len(data)
        return data

    def readinto(self, b) -> int:
        data = self.read(len(memoryview(b)))
        memoryview(b).cast("B")[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self.read(-1)

    @property
    def storage_options(self) -> dict[str, Any]:
        """The fsspec options this file was opened with (secrets included: never print them)."""
        return self._so

    @property
    def name(self) -> str:
        """The URL as messages show it (:func:`scrub`: no user-info, tokens or secrets)."""
        return scrub(self.url, self._so)

    @property
    def identity(self) -> str:
        """What identifies the object (:func:`url_identity`), for dask tokens."""
        return url_identity(self.url)

    def fetch_ranges(self, ranges) -> dict[tuple[int, int], bytes]:
        """:func:`fetch_ranges` of this file: the byte ranges, concurrently, retried."""
        return fetch_ranges(self, ranges)

    def __reduce__(self):
        return (_reopen_remote_file, (self.url, self._so, self.policy, self.size, self.pos))

    def __repr__(self) -> str:
        return f"RemoteFile({scrub(self.url, self._so)!r}, size={self.size})"


def clear_block_cache() -> None:
    """Forget every cached block of this process (the next small reads of a remote file fetch
    again: what a fresh worker sees)."""
    with _BLOCKS_LOCK:
        _BLOCKS.clear()


def range_pool(workers: int):
    """The process's thread pool of ``workers`` threads for concurrent range requests (made again
    after a fork or when ``workers`` changes)."""
    global _POOL, _POOL_KEY
    from concurrent.futures import ThreadPoolExecutor

    key = (os.getpid(), int(workers))
    with _POOL_LOCK:
        if _POOL is None or _POOL_KEY != key:
            if _POOL is not None and _POOL_KEY is not None and _POOL_KEY[0] == key[0]:
                _POOL.shutdown(wait=False)
            _POOL = ThreadPoolExecutor(max_workers=key[1], thread_name_prefix="gridflux-range")
            _POOL_KEY = key
        return _POOL


def plan_requests(ranges, max_request: int = MAX_REQUEST) -> list[tuple[int, int]]:
    """The requests that fetch byte ranges ``[(start, end), ...]``: sorted, ranges that touch or
    overlap merged (no byte is asked for that no range holds), then split into requests of at
    most ``max_request`` bytes so that long ranges are fetched concurrently."""
    merged: list[list[int]] = []
    for a, b in sorted((int(a), int(b)) for a, b in ranges if b > a):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out = []
    for a, b in merged:
        n = -(-(b - a) // max_request)
        step = -(-(b - a) // n)
        out += [(x, min(b, x + step)) for x in range(a, b, step)]
    return out


def fetch_ranges(
    f: RemoteFile, ranges, *, max_request: int = MAX_REQUEST
) -> dict[tuple[int, int], bytes]:
    """The bytes of each range ``(start, end)`` of the remote file ``f``, fetched concurrently
    (``f.policy.concurrency`` requests in flight; see :func:`plan_requests`), each request retried
    and length-checked as :meth:`RemoteFile.fetch` does.

    Raises
    ------
    InputError
        A range reaching past the object's end (the object is shorter than the file's own index
        says: truncated).
    RemoteReadError
        A request whose retries are exhausted (the first one, in request order).
    """
    ranges = list(dict.fromkeys((int(a), int(b)) for a, b in ranges))
    beyond = [r for r in ranges if r[1] > f.size]
    if beyond:
        a, b = max(beyond, key=lambda r: r[1])
        raise InputError(
            f"truncated: bytes {a}-{b - 1} are needed, but the object has {f.size} bytes "
            f"({b - f.size} missing); an interrupted upload? Copy it again",
            path=scrub(f.url, f.storage_options),
            attribute="size",
        )
    out = {}
    for r in ranges:  # already in the block cache (e.g. a small chunk beside the metadata)
        hit = f.cached(*r)
        if hit is not None and len(hit) == r[1] - r[0]:
            out[r] = hit
    requests = plan_requests([r for r in ranges if r not in out], max_request)
    if not requests:
        return out
    if len(requests) == 1 or f.policy.concurrency == 1:
        got = [f.fetch(a, b) for a, b in requests]
    else:
        pool = range_pool(f.policy.concurrency)
        got = [fut.result() for fut in [pool.submit(f.fetch, a, b) for a, b in requests]]
    starts = [a for a, _ in requests]
    import bisect

    for a, b in ranges:
        if (a, b) in out:
            continue
        if a >= b:
            out[(a, b)] = b""
            continue
        i = bisect.bisect_right(starts, a) - 1
        parts, pos = [], a
        while pos < b:
            ra, rb = requests[i]
            parts.append(got[i][pos - ra : min(b, rb) - ra])
            pos = min(b, rb)
            i += 1
        out[(a, b)] = parts[0] if len(parts) == 1 else b"".join(parts)
    return out


def chunk_reader(
    url: str,
    variable: str,
    storage_options: Mapping[str, Any] | None = None,
    policy: RemotePolicy | None = None,
    size: int | None = None,
):
    """A :class:`gridflux.ingest.chunkread.RemoteChunkReader` of ``variable`` of the remote
    netCDF-4 object ``url``, over a :class:`RemoteFile` whose block size is
    ``policy.metadata_block_size`` (its metadata reads; the field is fetched by exact ranges)."""
    from gridflux.ingest.chunkread import RemoteChunkReader

    policy = policy or RemotePolicy.from_config()
    meta = replace(policy, block_size=policy.metadata_block_size)
    return RemoteChunkReader(RemoteFile(url, storage_options, meta, size=size), variable)


def metadata_file(
    url: str, storage_options: Mapping[str, Any] | None = None, policy: RemotePolicy | None = None
) -> RemoteFile | None:
    """A :class:`RemoteFile` of ``url`` whose small reads go through the process's block cache in
    blocks of ``remote.metadata-block-size`` (as :func:`open_netcdf` reads a file's metadata, so
    the two share the cached blocks); None when the file is read from a local cached copy
    (``simplecache::`` URLs, ``remote.cache``)."""
    policy = policy or RemotePolicy.from_config()
    layer, target = split_chain(url)
    if layer is not None or policy.cache:
        return None
    meta = replace(policy, block_size=policy.metadata_block_size)
    return RemoteFile(target, storage_options, meta)


def _reopen_remote_file(url, storage_options, policy, size, pos) -> RemoteFile:
    f = RemoteFile(url, storage_options, policy, size=size)
    f.seek(pos)
    return f


# -- local cache ------------------------------------------------------------------------------
def cache_path(
    url: str, storage_options: Mapping[str, Any] | None = None, policy: RemotePolicy | None = None
) -> str:
    """Where :func:`cached_copy` keeps ``url`` (a hash of the URL without user-info, plus its
    name)."""
    policy = policy or RemotePolicy.from_config()
    _, target = split_chain(url)
    clean = _USERINFO.sub(lambda m: m.group("scheme"), target)
    digest = hashlib.sha256(clean.encode()).hexdigest()[:24]
    name = (
        re.sub(r"[^A-Za-z0-9._-]", "_", clean.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0])
        or "object"
    )
    return os.path.join(policy.cache_root(storage_options), digest, name)


def cached_copy(
    url: str, storage_options: Mapping[str, Any] | None = None, policy: RemotePolicy | None = None
) -> str:
    """A local copy of a remote object, downloaded once (like fsspec's ``simplecache``).

    The download goes through :class:`RemoteFile` (range requests with retries and length checks)
    into a temporary file that is renamed into the cache only when it has the object's declared
    size, so a failed or truncated download never leaves a file that a later run would trust. A
    cached file is reused without contacting the server (clear the cache directory when the remote
    objects change).
    """
    policy = policy or RemotePolicy.from_config()
    _, target = split_chain(url)
    dest = cache_path(url, storage_options, policy)
    if os.path.exists(dest):
        log.debug("%s: read from the local cache %s", scrub(target, storage_options), dest)
        return dest
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    src = RemoteFile(target, storage_options, policy)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out:
            done = 0
            while done < src.size:
                chunk = src.fetch(done, done + policy.block_size)
                out.write(chunk)
                done += len(chunk)
        if os.path.getsize(tmp) != src.size:  # pragma: no cover - fetch checks every block
            raise RemoteReadError(
                f"download has {os.path.getsize(tmp)} of {src.size} bytes",
                path=scrub(target, storage_options),
            )
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


# -- opening datasets -------------------------------------------------------------------------
def open_netcdf(
    url: str,
    storage_options: Mapping[str, Any] | None = None,
    policy: RemotePolicy | None = None,
    **xr_kwargs: Any,
):
    """Open a remote netCDF-4/HDF5 file lazily.

    ``simplecache::URL`` (or ``remote.cache: true``) reads a local cached copy with the netCDF4
    engine; otherwise the file is read in place with engine ``h5netcdf`` over a :class:`RemoteFile`
    (its metadata in blocks of ``remote.metadata-block-size``), and, unless ``chunks`` is given or
    ``pipeline.fast-inflate`` is off, its fields (variables of 3 or more dimensions that
    :func:`gridflux.ingest.chunkread.supported` accepts) are read by chunk: a selection fetches
    only its byte ranges, concurrently (:class:`gridflux.ingest.chunkread.RemoteChunkReader`).
    Errors of the transport are :class:`RemoteReadError`; the caller wraps format errors.
    """
    import xarray as xr

    policy = policy or RemotePolicy.from_config()
    layer, target = split_chain(url)
    if layer is not None or policy.cache:
        from gridflux.ingest.chunkread import truncation

        local = cached_copy(target, storage_options, policy)
        truncated = truncation(local)  # a whole object, shorter than its own header says
        if truncated:
            raise InputError(truncated, path=scrub(url, storage_options), attribute="size")
        return xr.open_dataset(local, engine="netcdf4", **xr_kwargs)
    if xr_kwargs.get("chunks") is not None or not config.get("pipeline.fast-inflate", True):
        return xr.open_dataset(
            RemoteFile(target, storage_options, policy), engine="h5netcdf", **xr_kwargs
        )
    # read by chunk: metadata through small cached blocks, fields by their exact byte ranges
    from gridflux.ingest.chunkarray import remote_chunk_variable

    decode = {k: xr_kwargs.pop(k) for k in DECODE_KWARGS if k in xr_kwargs}
    decode_cf = xr_kwargs.pop("decode_cf", True)
    meta = replace(policy, block_size=policy.metadata_block_size)
    f = RemoteFile(target, storage_options, meta)
    raw = xr.open_dataset(f, engine="h5netcdf", decode_cf=False, **xr_kwargs)
    for name, var in raw.data_vars.items():
        if var.ndim >= 3:  # a file object of its own (one h5py file per object), same cache
            field = RemoteFile(target, storage_options, meta, size=f.size)
            raw[name] = remote_chunk_variable(var.variable, field, str(name))
    return xr.decode_cf(raw, **decode) if decode_cf else raw


def zarr_store(
    url: str, storage_options: Mapping[str, Any] | None = None, policy: RemotePolicy | None = None
):
    """A read-only zarr store for a remote zarr URL: an fsspec mapper (with the policy's timeouts)
    wrapped so that every read is retried (:class:`RetryingStore`)."""
    from zarr.storage import FsspecStore

    policy = policy or RemotePolicy.from_config()
    layer, target = split_chain(url)
    if layer is not None:
        raise InputError(
            f"{layer}:: caching is for netCDF files; open zarr stores in place",
            path=scrub(url),
            attribute="path",
        )
    import fsspec

    opts = with_timeouts(target, options_for(target, storage_options), policy)
    cls = fsspec.get_filesystem_class(protocol_of(target))
    path = cls._strip_protocol(target)
    if getattr(cls, "async_impl", False):
        # zarr 3 reads through the async API: the asynchronous twin of the fsspec mapper's
        # filesystem
        inner = FsspecStore(
            fsspec.filesystem(protocol_of(target), asynchronous=True, **opts),
            path=path,
            read_only=True,
        )
    else:
        inner = FsspecStore.from_mapper(fsspec.get_mapper(target, **opts), read_only=True)
    return RetryingStore(inner, url=target, policy=policy, storage_options=storage_options)


def open_zarr(
    url: str,
    storage_options: Mapping[str, Any] | None = None,
    policy: RemotePolicy | None = None,
    **xr_kwargs: Any,
):
    """Open a remote zarr store lazily through :func:`zarr_store`."""
    import xarray as xr

    return xr.open_zarr(zarr_store(url, storage_options, policy), **xr_kwargs)


def _retrying_store_class():
    from zarr.storage import WrapperStore

    class _RetryingStore(WrapperStore):
        """A zarr store whose reads are retried on transient errors with backoff and a timeout."""

        def __init__(
            self,
            store,
            *,
            url: str = "",
            policy: RemotePolicy | None = None,
            storage_options: Mapping[str, Any] | None = None,
        ) -> None:
            super().__init__(store)
            self._url = url
            self._policy = policy or RemotePolicy.from_config()
            self._so = dict(storage_options or {})

        def _with_store(self, store):
            return type(self)(store, url=self._url, policy=self._policy, storage_options=self._so)

        def __reduce__(self):
            return (_reopen_zarr_store, (self._url, self._so, self._policy))

        async def _retry(self, make: Callable[[], Any], what: str) -> Any:
            return await acall_with_retries(
                make, url=self._url, what=what, policy=self._policy, storage_options=self._so
            )

        async def get(self, key, prototype, byte_range=None):
            return await self._retry(
                lambda: self._store.get(key, prototype, byte_range), f"read of {key!r}"
            )

        async def get_partial_values(self, prototype, key_ranges):
            key_ranges = list(key_ranges)
            return await self._retry(
                lambda: self._store.get_partial_values(prototype, key_ranges), "partial reads"
            )

        async def exists(self, key):
            return await self._retry(lambda: self._store.exists(key), f"lookup of {key!r}")

        def __repr__(self) -> str:
            return f"RetryingStore({scrub(self._url, self._so)!r})"

    return _RetryingStore


_RETRYING_STORE = None


def RetryingStore(
    store,
    *,
    url: str,
    policy: RemotePolicy | None = None,  # noqa: N802 - a class factory
    storage_options: Mapping[str, Any] | None = None,
):
    """Wrap a zarr store so that reads retry transient errors (class built lazily: zarr is
    heavy)."""
    global _RETRYING_STORE
    if _RETRYING_STORE is None:
        _RETRYING_STORE = _retrying_store_class()
    return _RETRYING_STORE(store, url=url, policy=policy, storage_options=storage_options)


def _reopen_zarr_store(url, storage_options, policy):
    return zarr_store(url, storage_options, policy)
