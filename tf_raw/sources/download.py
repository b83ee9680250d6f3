"""Downloads one file over HTTP(S) with the standard library, all or nothing.

    download_file(url, dest_path, expected_sha256=...)

streams the body into `<dest_path>.part` while hashing it, checks the length
(when the server sent Content-Length) and the checksums, and only then renames
the `.part` file to `dest_path`. Any failure (HTTP error, refused connection,
timeout, truncated body, checksum mismatch) deletes the `.part` file and
raises `DownloadError`, whose message is one sentence saying what to do; Ctrl-C
(and SIGTERM, which the programs turn into an exception) deletes it too and
propagates, so the program exits 130 or 143.

Proxies from the environment (`https_proxy`, ...) are honoured, except for
loopback hosts (127.0.0.1, localhost), which are always reached directly: a
proxy cannot reach them, and tests serve files from there.
"""

import hashlib
import http.client
import ipaddress
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

_CHUNK_BYTES = 1 << 20  # Read and hash 1 MiB at a time: little memory use.
_MIB = float(1 << 20)

# Tells a user without network access how to go on (the flag of tf_raw.train).
_OFFLINE_ADVICE = ("download that file elsewhere and pass --data_dir=FOLDER, "
                   "the folder that holds it")


class DownloadError(Exception):
  """A download failed; str(e) is one sentence saying what to do."""


def _is_loopback(host):
  if host is None:
    return False
  if host.lower() == "localhost":
    return True
  try:
    return ipaddress.ip_address(host).is_loopback
  except ValueError:  # A name, not an address.
    return False


def _build_opener(url):
  """An opener with the environment's proxies, or none for loopback hosts."""
  if _is_loopback(urllib.parse.urlsplit(url).hostname):
    proxy_handler = urllib.request.ProxyHandler({})  # {}: connect directly.
  else:
    proxy_handler = urllib.request.ProxyHandler()  # Reads *_proxy, no_proxy.
  return urllib.request.build_opener(proxy_handler)


def _show_progress(stream, name, done_bytes, total_bytes):
  if total_bytes:
    percent = 100 * done_bytes // total_bytes
    stream.write(f"\rDownloading {name}: {done_bytes / _MIB:.1f} of "
                 f"{total_bytes / _MIB:.1f} MiB ({percent}%)")
  else:
    stream.write(f"\rDownloading {name}: {done_bytes / _MIB:.1f} MiB")
  stream.flush()


def _describe(error, timeout_s):
  """A short reason for a network error, e.g. 'Connection refused'."""
  reason = getattr(error, "reason", error)  # URLError wraps the socket error.
  if isinstance(reason, TimeoutError):
    return f"no answer within {timeout_s:g} s"
  if isinstance(reason, OSError) and reason.strerror:
    return reason.strerror
  return str(reason) or type(reason).__name__


def _fetch(url, part_path, timeout_s, show_progress, progress_stream):
  """Streams `url` into `part_path`.

  Returns:
    (number of bytes received, Content-Length or None, sha256 hex, md5 hex).
  """
  sha256 = hashlib.sha256()
  md5 = hashlib.md5(usedforsecurity=False)  # Only to compare with a known sum.
  received = 0
  name = os.path.basename(urllib.parse.urlsplit(url).path) or url
  with _build_opener(url).open(url, timeout=timeout_s) as response:
    length_header = response.headers.get("Content-Length", "")
    expected_length = int(length_header) if length_header.isdigit() else None
    with open(part_path, "wb") as part:
      try:
        while chunk := response.read(_CHUNK_BYTES):
          part.write(chunk)
          sha256.update(chunk)
          md5.update(chunk)
          received += len(chunk)
          if show_progress:
            _show_progress(progress_stream, name, received, expected_length)
      finally:
        if show_progress and received:
          progress_stream.write("\n")  # End the line, even after a failure.
  return received, expected_length, sha256.hexdigest(), md5.hexdigest()


def download_file(url, dest_path, expected_sha256, expected_md5=None,
                  timeout_s=60.0, show_progress=True, progress_stream=None):
  """Downloads `url` to `dest_path`, verified, or leaves nothing behind.

  Args:
    url: an http:// or https:// URL.
    dest_path: where the verified file ends up (its folder must exist).
    expected_sha256: hex sha256 the file must have.
    expected_md5: hex md5 it must also have, or None to skip that check.
    timeout_s: seconds to wait for the connection and for each read.
    show_progress: print progress, if `progress_stream` is a terminal.
    progress_stream: where progress goes; default sys.stderr.

  Raises:
    DownloadError: anything went wrong; no `.part` file is left behind.
  """
  scheme = urllib.parse.urlsplit(url).scheme
  if scheme not in ("http", "https"):
    raise DownloadError(f"--data_url must be an http:// or https:// URL, not "
                        f"{url!r}; fix it or pass --data_dir=FOLDER instead.")
  progress_stream = progress_stream or sys.stderr
  show_progress = show_progress and progress_stream.isatty()
  part_path = dest_path + ".part"
  try:
    received, expected_length, sha256, md5 = _fetch(
        url, part_path, timeout_s, show_progress, progress_stream)
    if expected_length is not None and received != expected_length:
      raise DownloadError(
          f"The download of {url} stopped after {received} of "
          f"{expected_length} bytes; run again to retry, or {_OFFLINE_ADVICE}.")
    for algorithm, actual, expected in (("sha256", sha256, expected_sha256),
                                        ("md5", md5, expected_md5)):
      if expected is not None and actual != expected.lower():
        raise DownloadError(
            f"The file downloaded from {url} has {algorithm} {actual}, not the "
            f"expected {expected}, so it is damaged or a different file; run "
            f"again, or {_OFFLINE_ADVICE}.")
    os.replace(part_path, dest_path)
  except urllib.error.HTTPError as error:  # Before URLError, its base class.
    error.close()  # It holds the response's connection open.
    raise DownloadError(
        f"Downloading {url} failed with HTTP {error.code} {error.reason}; "
        f"check --data_url, or {_OFFLINE_ADVICE}.") from error
  except (OSError, http.client.HTTPException) as error:
    # URLError (no DNS, refused, timeout while connecting), TimeoutError while
    # reading, RemoteDisconnected, IncompleteRead, a failed file write.
    raise DownloadError(f"Could not download {url} "
                        f"({_describe(error, timeout_s)}); {_OFFLINE_ADVICE}."
                        ) from error
  finally:
    # On success os.replace has moved it away; after any failure (including
    # a DownloadError raised above) a half-written .part must not survive.
    if os.path.exists(part_path):
      os.remove(part_path)
