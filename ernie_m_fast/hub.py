"""Finding files: in a local directory, or in a Hugging Face Hub repo through huggingface_hub (optional).

The one resolver behind the config, the weights and the tokenizer, so all three fail the same way.
huggingface_hub's cache and `HF_HUB_OFFLINE=1` apply unchanged, as transformers users expect. What we add:

- Fail fast when the hub cannot be reached. huggingface_hub retries every failed connection five times
  with back-off (~23 s and a page of warnings per file) before it falls back to its cache, and offers no
  switch for that. So before asking it, one plain request goes to the hub through huggingface_hub's own
  HTTP session (same proxies, same HF_ENDPOINT, same `configure_http_backend`); if that request gets no
  answer, files come from the local cache only (`local_files_only=True`, no network) and a file that is
  not there raises one error saying the hub was unreachable. Where the hub answers, downloads run exactly
  as huggingface_hub does them, retries included.
- Errors that say what happened: huggingface_hub's "not in the local cache" error subclasses its "the repo
  has no such file" error, so the two are told apart here, and each message names the repo, the cause
  (offline mode, no connection, no such repo, no such file) and what to do.
"""

from __future__ import annotations

import logging
import os
import re
import time

logger = logging.getLogger("ernie_m_fast")

# keyword arguments of from_pretrained that go to huggingface_hub (model, config and tokenizer alike)
HUB_KWARGS = ("revision", "cache_dir", "token", "local_files_only", "force_download", "subfolder")

# how long one reachability check stands for (seconds): a from_pretrained asks for up to ten files
_PROBE_TTL_S = 60.0
_probes: dict[str, tuple[float, str | None]] = {}


def is_local(path_or_repo_id) -> bool:
    return os.path.isdir(os.fspath(path_or_repo_id))


def _looks_like_path(name: str) -> bool:
    """True for what can only be a filesystem path (a hub repo id is `name` or `namespace/name`)."""
    return (os.path.isabs(name) or name.startswith(("./", "../", "~", ".\\", "..\\")) or name in (".", "..")
            or "\\" in name or name.count("/") > 1 or name.endswith("/"))


def _no_such_path(name: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{name!r} does not exist: it is not a local directory ({os.path.abspath(os.path.expanduser(name))}), "
        "and it cannot be a Hugging Face Hub repo id (those look like 'namespace/name'). Check the path."
    )


def _offline_reason(local_files_only: bool) -> str | None:
    from huggingface_hub import constants

    if local_files_only:
        return "local_files_only=True was passed"
    # the variable as the process has it now, and as huggingface_hub read it at import
    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "0").upper() in ("1", "ON", "YES", "TRUE"):
        return "offline mode is on (HF_HUB_OFFLINE=1)"
    return None


def _describe(exc: BaseException) -> str:
    """The innermost cause of a connection error, short: 'NameResolutionError: Failed to resolve ...'."""
    inner = exc
    for _ in range(8):  # requests' error -> urllib3's MaxRetryError -> its .reason (NameResolutionError, ...)
        nxt = getattr(inner, "reason", None)
        if not isinstance(nxt, BaseException):
            nxt = inner.args[0] if inner.args and isinstance(inner.args[0], BaseException) else None
        if not isinstance(nxt, BaseException):
            break
        inner = nxt
    text = re.sub(r"^\w+\(host=[^)]*\): ", "", str(inner))  # urllib3's "HTTPSConnection(host=..., port=443): "
    text = re.sub(r",? *'?\(Request ID: [^)]*\)'?", "", text)
    return f"{type(inner).__name__}: {text}"[:300]


def hub_unreachable_reason(endpoint: str | None = None) -> str | None:
    """None when the hub answers at all (any HTTP status); otherwise why no answer came.

    One request through huggingface_hub's session, with no retries and huggingface_hub's own HEAD
    timeout (HF_HUB_ETAG_TIMEOUT); the result stands for _PROBE_TTL_S seconds.
    """
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    endpoint = endpoint or constants.ENDPOINT
    now = time.monotonic()
    cached = _probes.get(endpoint)
    if cached is not None and now - cached[0] < _PROBE_TTL_S:
        return cached[1]
    try:
        get_session().head(endpoint, timeout=constants.HF_HUB_ETAG_TIMEOUT)
        reason = None
    except Exception as exc:  # DNS, refused, timeout, proxy, TLS: requests' and httpx's classes alike
        reason = _describe(exc)
    _probes[endpoint] = (now, reason)
    return reason


def _cache_dir(cache_dir) -> str:
    from huggingface_hub import constants

    return os.fspath(cache_dir) if cache_dir is not None else constants.HF_HUB_CACHE


def _unavailable_error(repo_id: str, what: str, cache_dir, offline: str | None, unreachable: str | None) -> OSError:
    """The hub could not be asked and `what` is not in the local cache: say which of the two, and what to do."""
    cache = _cache_dir(cache_dir)
    if offline is not None:
        return OSError(
            f"cannot load {repo_id!r}: it is not a local directory, and {offline}, so the Hugging Face Hub was not "
            f"asked; {what} is not in the local hub cache ({cache}). Run once with the hub reachable (unset "
            "HF_HUB_OFFLINE, drop local_files_only) to download it, or pass a local directory."
        )
    from huggingface_hub import constants

    return OSError(
        f"cannot load {repo_id!r}: it is not a local directory, and the Hugging Face Hub ({constants.ENDPOINT}) "
        f"could not be reached ({unreachable}); {what} is not in the local hub cache ({cache}) either. Check the "
        "network or proxy (HF_ENDPOINT for a mirror), or download the repo where the hub is reachable and pass "
        "its local directory."
    )


def _import_hub(name: str):
    try:
        import huggingface_hub
    except ImportError as exc:
        raise ImportError(
            f"{name!r} is not a local directory; loading it as a Hugging Face Hub repo id needs huggingface_hub "
            "(pip install 'ernie-m-fast[hub]')"
        ) from exc
    return huggingface_hub


def _repo_id(name: str):
    """huggingface_hub, after checking that `name` can be a repo id (else the error for a missing path)."""
    if _looks_like_path(name):
        raise _no_such_path(name)
    huggingface_hub = _import_hub(name)
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        raise _no_such_path(name) from None
    return huggingface_hub


def resolve_file(path_or_repo_id, filename: str, *, optional: bool = False, **hub_kwargs) -> str | None:
    """Local path of `filename` in a directory or hub repo.

    None when `optional` and the file does not exist, or (offline, hub unreachable) is not in the cache.
    `hub_kwargs`: any of HUB_KWARGS, as huggingface_hub's hf_hub_download takes them.
    """
    name = os.fspath(path_or_repo_id)
    unknown = set(hub_kwargs) - set(HUB_KWARGS)
    if unknown:
        raise TypeError(f"unexpected hub arguments {sorted(unknown)}; known: {HUB_KWARGS}")
    if os.path.isdir(name):
        path = os.path.join(name, hub_kwargs.get("subfolder") or "", filename)
        if os.path.isfile(path):
            return path
        if optional:
            return None
        raise FileNotFoundError(f"{name} has no {os.path.relpath(path, name)}")
    if os.path.exists(name):
        raise NotADirectoryError(f"{name} is a file; pass the directory that holds {filename}")
    huggingface_hub = _repo_id(name)
    from huggingface_hub.utils import (EntryNotFoundError, GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                       RepositoryNotFoundError, RevisionNotFoundError)

    kwargs = {k: v for k, v in hub_kwargs.items() if v is not None}
    offline = _offline_reason(bool(kwargs.get("local_files_only")))
    unreachable = None if offline is not None else hub_unreachable_reason()
    if offline is not None or unreachable is not None:
        kwargs["local_files_only"] = True  # the cache only: no request, so no retries
        kwargs.pop("force_download", None)
    try:
        path = huggingface_hub.hf_hub_download(name, filename, **kwargs)
    except LocalEntryNotFoundError as exc:  # before EntryNotFoundError: it subclasses it, but means "not cached"
        if optional and (offline is not None or unreachable is not None):
            return None  # whether the repo has it cannot be known; the caller says so if nothing is found
        if offline is None and unreachable is None:  # the hub answered the probe, then failed this request
            unreachable = _describe(exc.__cause__ or exc)
        raise _unavailable_error(name, filename, kwargs.get("cache_dir"), offline, unreachable) from None
    except EntryNotFoundError:
        if optional:
            return None
        raise FileNotFoundError(f"hub repo {name!r} has no {filename}") from None
    except GatedRepoError:
        raise OSError(
            f"cannot load {name!r}: the hub repo is gated; request access on its page and pass token= "
            "(or log in with `hf auth login`)") from None
    except RepositoryNotFoundError:
        raise OSError(
            f"cannot load {name!r}: it is not a local directory, and the Hugging Face Hub has no repo by that name "
            "(if it is private, pass token= or log in with `hf auth login`)") from None
    except RevisionNotFoundError:
        raise OSError(f"hub repo {name!r} has no revision {kwargs.get('revision')!r}") from None
    except HfHubHTTPError as exc:
        raise OSError(f"cannot load {name!r}: the Hugging Face Hub answered an error for {filename}: {exc}") from None
    if unreachable is not None:
        logger.warning("The Hugging Face Hub could not be reached (%s); using the cached %s of %s, which may be "
                       "out of date.", unreachable, filename, name)
    return path


def raise_if_hub_unavailable(path_or_repo_id, what: str, **hub_kwargs) -> None:
    """For a caller whose optional files all came back None: when that is because the hub could not be
    asked (offline, unreachable), raise the error that says so, rather than claiming the repo lacks them."""
    name = os.fspath(path_or_repo_id)
    if os.path.isdir(name):
        return
    _repo_id(name)
    offline = _offline_reason(bool(hub_kwargs.get("local_files_only")))
    unreachable = None if offline is not None else hub_unreachable_reason()
    if offline is not None or unreachable is not None:
        raise _unavailable_error(name, what, hub_kwargs.get("cache_dir"), offline, unreachable)
