"""Tests of tf_raw/download.py (and the download path of cifar10.load_cifar10).

All traffic goes to a loopback server on 127.0.0.1. Every test runs with a
bogus http_proxy, to show that loopback URLs bypass proxies.
"""

import hashlib
import os
import pathlib
import urllib.error
import urllib.request

import numpy as np
import pytest

from tests import cifar_fixtures
from tf_raw import data
from tf_raw.sources import cifar10
from tf_raw.sources import download

Route = cifar_fixtures.Route
PAYLOAD = bytes(range(256)) * 4096  # 1 MiB: more than one read chunk.
PAYLOAD_SHA256 = cifar_fixtures.sha256_of(PAYLOAD)


@pytest.fixture(autouse=True)
def bogus_proxy(monkeypatch):
  """Points every proxy variable at a port where nothing listens."""
  proxy = cifar_fixtures.closed_port_url(path="")
  for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
               "all_proxy", "ALL_PROXY"):
    monkeypatch.setenv(name, proxy)
  for name in ("no_proxy", "NO_PROXY"):
    monkeypatch.delenv(name, raising=False)
  return proxy


class FakeTerminal:
  """A stream that claims to be a terminal and records what was written."""

  def __init__(self, interrupt_after_writes=None):
    self.written = []
    self._interrupt_after_writes = interrupt_after_writes

  def isatty(self):
    return True

  def write(self, text):
    if self._interrupt_after_writes is not None and (
        len(self.written) >= self._interrupt_after_writes):
      raise KeyboardInterrupt  # As if the user pressed Ctrl-C mid-download.
    self.written.append(text)

  def flush(self):
    pass


class FakePipe(FakeTerminal):

  def isatty(self):
    return False


def test_bogus_proxy_really_breaks_urllib_defaults():
  # Without the bypass this proxy would break every download below.
  with cifar_fixtures.loopback_server({"/f": Route(b"x")}) as server:
    with pytest.raises(urllib.error.URLError):
      urllib.request.build_opener().open(server.url("/f"), timeout=5)
    assert server.requested_paths == []


def test_download_success_with_checksums_and_progress(tmp_path):
  dest = str(tmp_path / "file.bin")
  terminal = FakeTerminal()
  with cifar_fixtures.loopback_server({"/file.bin": Route(PAYLOAD)}) as server:
    download.download_file(
        server.url("/file.bin"), dest, expected_sha256=PAYLOAD_SHA256,
        expected_md5=hashlib.md5(PAYLOAD).hexdigest(),
        progress_stream=terminal)
  assert pathlib.Path(dest).read_bytes() == PAYLOAD
  assert os.listdir(tmp_path) == ["file.bin"]
  assert "1.0 of 1.0 MiB (100%)" in "".join(terminal.written)
  assert terminal.written[-1] == "\n"  # The progress line is ended.


def test_no_progress_when_not_a_terminal(tmp_path):
  pipe = FakePipe()
  with cifar_fixtures.loopback_server({"/f": Route(PAYLOAD)}) as server:
    download.download_file(server.url("/f"), str(tmp_path / "f"),
                           expected_sha256=PAYLOAD_SHA256, progress_stream=pipe)
  assert pipe.written == []


def _proxies_of(opener):
  """The proxies an opener would use ({} when it connects directly)."""
  handlers = [handler for handler in opener.handlers
              if isinstance(handler, urllib.request.ProxyHandler)]
  return handlers[0].proxies if handlers else {}


def test_localhost_name_bypasses_the_proxy(tmp_path):
  with cifar_fixtures.loopback_server({"/f": Route(PAYLOAD)}) as server:
    url = server.url("/f").replace("127.0.0.1", "localhost")
    download.download_file(url, str(tmp_path / "f"),
                           expected_sha256=PAYLOAD_SHA256, show_progress=False)
  assert (tmp_path / "f").read_bytes() == PAYLOAD


@pytest.mark.parametrize("url", ["http://[::1]:8000/f", "http://127.0.0.2/f",
                                 "http://LOCALHOST/f"])
def test_every_loopback_host_skips_proxies(url):
  assert _proxies_of(download._build_opener(url)) == {}


def test_other_hosts_keep_the_environment_proxy(bogus_proxy):
  opener = download._build_opener("https://cifar.example.invalid/x")
  assert _proxies_of(opener)["https"] == bogus_proxy


def _download(server_url, dest, **kwargs):
  kwargs.setdefault("expected_sha256", PAYLOAD_SHA256)
  kwargs.setdefault("show_progress", False)
  download.download_file(server_url, dest, **kwargs)


def test_md5_mismatch(tmp_path):
  with cifar_fixtures.loopback_server({"/f": Route(PAYLOAD)}) as server:
    with pytest.raises(download.DownloadError,
                       match=r"has md5 [0-9a-f]{32}, not the expected 0{32}"):
      _download(server.url("/f"), str(tmp_path / "f"), expected_md5="0" * 32)
  assert os.listdir(tmp_path) == []


def test_ctrl_c_removes_the_part_file(tmp_path):
  terminal = FakeTerminal(interrupt_after_writes=0)
  with cifar_fixtures.loopback_server({"/f": Route(PAYLOAD * 3)}) as server:
    # It propagates (the program exits 130), after removing the .part file.
    with pytest.raises(KeyboardInterrupt):
      _download(server.url("/f"), str(tmp_path / "f"), progress_stream=terminal,
                show_progress=True)
  assert os.listdir(tmp_path) == []


def test_stale_part_file_is_replaced(tmp_path):
  (tmp_path / "f.part").write_bytes(b"left over from a crash")
  with cifar_fixtures.loopback_server({"/f": Route(PAYLOAD)}) as server:
    _download(server.url("/f"), str(tmp_path / "f"))
  assert os.listdir(tmp_path) == ["f"]


def test_non_http_url(tmp_path):
  with pytest.raises(download.DownloadError,
                     match=r"--data_url must be an http:// or https:// URL"):
    _download("file:///etc/passwd", str(tmp_path / "f"))


# ---------------------------------------------------------------------------
# Through cifar10.load_cifar10: each failure is a DataError and the cache stays
# empty (no .part, no temporary folders).

FAILURES = {
    # name: (route or None for a closed port, timeout_s, message regex)
    "http_404": (Route(status=404), 5.0,
                 r"Downloading http://127\.0\.0\.1:\d+/c\.tar\.gz failed with "
                 r"HTTP 404 Not Found; check --data_url, or download that file "
                 r"elsewhere and pass --data_dir=FOLDER"),
    "truncated": (Route(PAYLOAD, content_length=len(PAYLOAD) + 1000), 5.0,
                  r"stopped after 1048576 of 1049576 bytes; run again"),
    "refused": (None, 5.0,
                r"Could not download http://127\.0\.0\.1:\d+/c\.tar\.gz "
                r"\(Connection refused\); download that file elsewhere and "
                r"pass --data_dir=FOLDER, the folder that holds it\.$"),
    "timeout": (Route(PAYLOAD, delay_s=30), 0.5,
                r"Could not download .* \(no answer within 0\.5 s\); download "
                r"that file elsewhere and pass --data_dir=FOLDER"),
    "wrong_checksum": (Route(PAYLOAD[:-1] + b"!"), 5.0,
                       r"has sha256 [0-9a-f]{64}, not the expected "
                       + PAYLOAD_SHA256),
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_download_failures_leave_nothing(tmp_path, failure):
  route, timeout_s, match = FAILURES[failure]
  cache = tmp_path / "cache"
  with cifar_fixtures.loopback_server(
      {} if route is None else {"/c.tar.gz": route}) as server:
    url = (cifar_fixtures.closed_port_url("/c.tar.gz") if route is None
           else server.url("/c.tar.gz"))
    with pytest.raises(data.DataError, match=match) as caught:
      cifar10.load_cifar10(None, str(cache), data_url=url, timeout_s=timeout_s,
                        expected_sha256=PAYLOAD_SHA256, show_progress=False,
                        keras_cache_dir=str(tmp_path / "no_keras"))
  assert "\n" not in str(caught.value)
  assert cifar_fixtures.leftover_files(cache) == []


def test_download_through_load_cifar10_with_bogus_proxy(tmp_path):
  archive, expected = cifar_fixtures.write_cifar_archive(tmp_path / "served")
  payload = pathlib.Path(archive).read_bytes()
  with cifar_fixtures.loopback_server({"/c.tar.gz": Route(payload)}) as server:
    dataset = cifar10.load_cifar10(
        None, str(tmp_path / "cache"), data_url=server.url("/c.tar.gz"),
        expected_sha256=cifar_fixtures.sha256_of(payload), show_progress=False,
        keras_cache_dir=str(tmp_path / "no_keras"))
  np.testing.assert_array_equal(dataset.train_images, expected.train_images)
  np.testing.assert_array_equal(dataset.test_labels, expected.test_labels)


def test_official_checksum_also_checks_md5(tmp_path, monkeypatch):
  seen = {}

  def fake_download_file(url, dest_path, expected_sha256, expected_md5=None,
                         **unused_kwargs):
    seen[expected_sha256] = expected_md5
    raise download.DownloadError("stop here.")

  monkeypatch.setattr(download, "download_file", fake_download_file)
  for sha256 in (cifar10.CIFAR10_SHA256, PAYLOAD_SHA256):
    with pytest.raises(data.DataError, match="stop here"):
      cifar10.load_cifar10(None, str(tmp_path / "cache"), expected_sha256=sha256,
                        keras_cache_dir=str(tmp_path / "no_keras"))
  assert seen == {cifar10.CIFAR10_SHA256: cifar10.CIFAR10_MD5, PAYLOAD_SHA256: None}
