"""Loading by hub repo id or path: the errors say what happened, and no network is used here.

The model (config + weights) and the tokenizer go through one resolver (`ernie_m_fast.hub`), so each
failure is checked for both. huggingface_hub's download function is replaced by stubs that raise its
real exception classes the way it does with no network; its HTTP session (which our reachability
check uses) is replaced too, so nothing here can reach the network.
"""

from __future__ import annotations

import logging
import os

import pytest
import torch

import ernie_m_fast as emf
from ernie_m_fast import hub

huggingface_hub = pytest.importorskip("huggingface_hub")
requests = pytest.importorskip("requests")
from huggingface_hub.utils import (EntryNotFoundError, LocalEntryNotFoundError,  # noqa: E402
                                   RepositoryNotFoundError)

REPO = "someone/ernie-m-tiny"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    """A directory holding a tiny model and its tokenizer, as a hub repo would."""
    from ernie_m_fast.tiny import train_tiny_tokenizer

    root = str(tmp_path_factory.mktemp("repo"))
    train_tiny_tokenizer(root, vocab_size=1000)
    tok = emf.ErnieMTokenizer.from_pretrained(root)
    torch.manual_seed(0)
    config = emf.ErnieMConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                              intermediate_size=32, max_position_embeddings=64)
    emf.ErnieMModel(config).save_pretrained(root)
    tok.save_pretrained(root)
    return root


class Session:
    """huggingface_hub's HTTP session, as our reachability check uses it: `error` raised by every request."""

    def __init__(self, error: Exception | None = None):
        self.error, self.requests = error, 0

    def head(self, url, **kwargs):
        self.requests += 1
        if self.error is not None:
            raise self.error
        return object()


class HubDownload:
    """hf_hub_download over `repo_dir`. `network`: "up" (files of repo_dir, EntryNotFoundError for the rest),
    "down" (what huggingface_hub raises after its retries when no connection can be made) or "broken"
    (RepositoryNotFoundError). `cached`: files its local cache holds (served also with local_files_only)."""

    def __init__(self, repo_dir: str, network: str = "up", cached=()):
        self.repo_dir, self.network, self.cached = repo_dir, network, set(cached)
        self.online: list[str] = []   # calls that would have gone to the network
        self.offline: list[str] = []  # calls with local_files_only=True

    def __call__(self, repo_id, filename, **kwargs):
        path = os.path.join(self.repo_dir, filename)
        if kwargs.get("local_files_only"):
            self.offline.append(filename)
            if filename in self.cached:
                return path
            raise LocalEntryNotFoundError("Cannot find the requested files in the disk cache and outgoing traffic "
                                          "has been disabled.")
        self.online.append(filename)
        if self.network == "down":
            try:
                raise requests.ConnectionError("Failed to resolve 'huggingface.co'")
            except requests.ConnectionError as exc:
                if filename in self.cached:
                    return path
                raise LocalEntryNotFoundError("An error happened while trying to locate the file on the Hub and we "
                                              "cannot find the requested files in the local cache.") from exc
        if self.network == "broken":
            raise RepositoryNotFoundError(f"404 Client Error. Repository Not Found for url: .../{repo_id}")
        if not os.path.exists(path):
            raise EntryNotFoundError(f"404 Client Error. Entry Not Found for url: .../{filename}")
        return path


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every test starts with no cached reachability answer and a session that cannot reach anything."""
    monkeypatch.setattr(hub, "_probes", {}, raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    session = Session(requests.ConnectionError("no network in tests"))
    monkeypatch.setattr(huggingface_hub.utils, "get_session", lambda: session)
    return session


def _use(monkeypatch, download: HubDownload, session: Session | None = None) -> HubDownload:
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    if session is not None:
        monkeypatch.setattr(huggingface_hub.utils, "get_session", lambda: session)
    return download


LOADERS = {"model": emf.ErnieMModel.from_pretrained, "tokenizer": emf.ErnieMTokenizer.from_pretrained}


@pytest.mark.parametrize("what", sorted(LOADERS))
def test_unreachable_hub_fails_at_once_with_one_clear_error(checkpoint, monkeypatch, caplog, no_network, what):
    download = _use(monkeypatch, HubDownload(checkpoint, network="down"))
    with caplog.at_level(logging.WARNING), pytest.raises(OSError) as info:
        LOADERS[what](REPO)
    message = str(info.value)
    assert REPO in message and "could not be reached" in message and "no network in tests" in message
    assert "not in the local hub cache" in message and "local directory" in message  # what to do
    assert "has no" not in message and "HF_HUB_OFFLINE=1)" not in message  # neither false claim of before
    assert download.online == []  # huggingface_hub was never sent to the network (its retries take ~23 s)
    assert no_network.requests == 1  # one plain request found the hub unreachable
    assert not [r for r in caplog.records if r.name.startswith("huggingface_hub")]  # no retry warnings


@pytest.mark.parametrize("what", sorted(LOADERS))
def test_connection_lost_after_the_check_is_not_reported_as_a_missing_file(checkpoint, monkeypatch, what):
    download = _use(monkeypatch, HubDownload(checkpoint, network="down"), Session())  # the check got an answer
    with pytest.raises(OSError, match="could not be reached") as info:
        LOADERS[what](REPO)
    assert "has no" not in str(info.value) and REPO in str(info.value)
    assert len(download.online) == 1  # the first file failed: nothing more was asked


def test_unreachable_hub_serves_cached_files_with_a_warning(checkpoint, monkeypatch, caplog):
    files = {"config.json", "model.safetensors", "sentencepiece.bpe.model", "vocab.txt", "tokenizer_config.json",
             "special_tokens_map.json"}
    download = _use(monkeypatch, HubDownload(checkpoint, network="down", cached=files))
    with caplog.at_level(logging.WARNING, logger="ernie_m_fast"):
        model = emf.ErnieMModel.from_pretrained(REPO)
        tok = emf.ErnieMTokenizer.from_pretrained(REPO)
    assert download.online == []
    assert "could not be reached" in caplog.text and "cached" in caplog.text
    reference = emf.ErnieMModel.from_pretrained(checkpoint)
    torch.testing.assert_close(model.state_dict(), reference.state_dict(), rtol=0, atol=0)
    assert tok.encode("Hello 世界") == emf.ErnieMTokenizer.from_pretrained(checkpoint).encode("Hello 世界")


@pytest.mark.parametrize("what", sorted(LOADERS))
def test_offline_mode_with_an_empty_cache(tmp_path, monkeypatch, no_network, what):
    """The real hf_hub_download (no stub) with HF_HUB_OFFLINE=1 and an empty cache directory."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(OSError) as info:
        LOADERS[what](REPO, cache_dir=str(tmp_path))
    message = str(info.value)
    assert REPO in message and "offline mode is on (HF_HUB_OFFLINE=1)" in message and str(tmp_path) in message
    assert "has no" not in message and "could not be reached" not in message
    assert no_network.requests == 0  # offline: not even the reachability check


@pytest.mark.parametrize("what", sorted(LOADERS))
def test_local_files_only_is_named_as_the_reason(tmp_path, no_network, what):
    with pytest.raises(OSError) as info:
        LOADERS[what](REPO, cache_dir=str(tmp_path), local_files_only=True)
    message = str(info.value)
    assert "local_files_only=True" in message and "HF_HUB_OFFLINE=1" not in message.split("Run once")[0]
    assert no_network.requests == 0


def test_offline_with_config_cached_but_no_weights_says_so(checkpoint, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _use(monkeypatch, HubDownload(checkpoint, cached={"config.json"}))
    with pytest.raises(OSError, match="offline mode is on.*none of its weight files") as info:
        emf.ErnieMModel.from_pretrained(REPO)
    assert "has no weights" not in str(info.value)


@pytest.mark.parametrize("path", ["/no/such/dir", "./no-such-dir", "../no-such-dir", "no/such/dir", "~/no-such-dir",
                                  "no-such-dir/", "bad name with spaces", "two--dashes"])
def test_missing_local_path_same_message_for_model_and_tokenizer(monkeypatch, tmp_path, no_network, path):
    monkeypatch.chdir(tmp_path)
    download = _use(monkeypatch, HubDownload(str(tmp_path)))
    messages = []
    for load in LOADERS.values():
        with pytest.raises(FileNotFoundError) as info:
            load(path)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert repr(path) in messages[0] and "not a local directory" in messages[0] and "Check the path" in messages[0]
    assert download.online == download.offline == [] and no_network.requests == 0  # the hub is not involved


def test_a_file_instead_of_a_directory(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    for load in LOADERS.values():
        with pytest.raises(NotADirectoryError, match="is a file; pass the directory"):
            load(tmp_path / "config.json")


@pytest.mark.parametrize("what", sorted(LOADERS))
def test_unknown_repo_and_missing_file_when_the_hub_answers(checkpoint, tmp_path, monkeypatch, what):
    _use(monkeypatch, HubDownload(checkpoint, network="broken"), Session())
    with pytest.raises(OSError, match="has no repo by that name.*token="):
        LOADERS[what](REPO)
    _use(monkeypatch, HubDownload(str(tmp_path)))  # the repo exists and is empty
    required = "config.json" if what == "model" else "sentencepiece.bpe.model"
    with pytest.raises(FileNotFoundError, match=f"hub repo '{REPO}' has no {required}"):
        LOADERS[what](REPO)


def test_hub_answers_and_the_repo_has_no_weights(checkpoint, tmp_path, monkeypatch):
    (tmp_path / "config.json").write_bytes(open(os.path.join(checkpoint, "config.json"), "rb").read())
    _use(monkeypatch, HubDownload(str(tmp_path)), Session())
    with pytest.raises(OSError, match="has no weights: looked for model.safetensors"):
        emf.ErnieMModel.from_pretrained(REPO)


def test_reachable_hub_downloads_with_the_callers_arguments(checkpoint, monkeypatch):
    download = _use(monkeypatch, HubDownload(checkpoint), Session())
    calls = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download",
                        lambda repo_id, filename, **kw: calls.append((filename, kw)) or download(repo_id, filename, **kw))
    model = emf.ErnieMModel.from_pretrained(REPO, revision="v1", force_download=True)
    assert isinstance(model, emf.ErnieMModel)
    assert [f for f, _ in calls][:2] == ["config.json", "model.safetensors"]
    assert all(kw == {"revision": "v1", "force_download": True} for _, kw in calls)  # passed on untouched


def test_one_reachability_check_serves_a_whole_load(checkpoint, monkeypatch):
    session = Session()
    _use(monkeypatch, HubDownload(checkpoint), session)
    emf.ErnieMModel.from_pretrained(REPO)
    emf.ErnieMTokenizer.from_pretrained(REPO)
    assert session.requests == 1


def test_connection_error_is_described_by_its_innermost_cause():
    import socket

    from urllib3.connection import HTTPSConnection
    from urllib3.exceptions import MaxRetryError, NameResolutionError

    cause = NameResolutionError("huggingface.co", HTTPSConnection("huggingface.co", 443),
                                socket.gaierror(-2, "Name or service not known"))
    error = requests.ConnectionError(MaxRetryError(None, "/", cause), "(Request ID: 1234)")
    assert hub._describe(error) == ("NameResolutionError: Failed to resolve 'huggingface.co' "
                                    "([Errno -2] Name or service not known)")
