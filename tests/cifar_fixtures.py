"""Test helpers: tiny official-format CIFAR-10 archives, a loopback server.

    pixel_value(image, channel, row, col)  the known value at each position
    write_batches_folder(folder, ...)      cifar-10-batches-py/ of known data
    write_cifar_archive(folder, ...)       the same, as cifar-10-python.tar.gz
    official_members(...)                  its members, to tamper with
    write_tar_gz(path, files, ...)         any archive, e.g. a malicious one
    sha256_of(payload)                     hex sha256 of bytes
    os_system_gadget(command)              a pickle that runs a shell command
    loopback_server(routes)                http.server on 127.0.0.1, a thread
    closed_port_url()                      a URL nobody listens on
    leftover_files(folder)                 what a failure left behind
"""

import contextlib
import dataclasses
import hashlib
import http.server
import io
import os
import socket
import struct
import tarfile
import tempfile
import threading

import numpy as np

from tf_raw.tools import cifar_writer
from tf_raw import data
from tf_raw.sources import cifar10


def pixel_value(image, channel, row, col):
  """The value stored for (image, channel, row, col): an independent oracle.

  Different coefficients per axis, so putting any value at the wrong row,
  column or channel changes it. Works elementwise on numpy index arrays.
  """
  return (7 * image + 101 * channel + 31 * row + 3 * col) % 256


def _rows_for(first_image, num_images):
  """uint8 (num_images, 3072) rows, built in CHW order from the oracle."""
  image, channel, row, col = np.indices((num_images, 3, 32, 32))
  planes = pixel_value(image + first_image, channel, row, col)  # (N, C, H, W)
  return planes.reshape(num_images, 3072).astype(np.uint8)  # The format's rows.


def _images_for(first_image, num_images):
  """uint8 (num_images, 32, 32, 3) NHWC images, straight from the oracle."""
  image, row, col, channel = np.indices((num_images, 32, 32, 3))
  return pixel_value(image + first_image, channel, row, col).astype(np.uint8)


def write_batches_folder(folder, num_per_batch=3, seed=0):
  """Writes folder/cifar-10-batches-py/ in the official format, small.

  Args:
    folder: parent folder (created if needed).
    num_per_batch: images in each of the 6 batches.
    seed: picks the labels, and offsets the image numbering so that folders
      with different seeds hold different pixels.

  Returns:
    (batches folder path, expected `data.Dataset` in the "nhwc" layout).
  """
  batches = os.path.join(folder, data.BATCHES_DIRNAME)
  os.makedirs(batches, exist_ok=True)
  rng = np.random.default_rng(seed)
  num_train = 5 * num_per_batch
  first = 1000 * seed  # Distinguishes seeds (7 * 1000 * seed mod 256 != 0).
  train_labels = rng.integers(0, 10, num_train).astype(np.int32)
  test_labels = rng.integers(0, 10, num_per_batch).astype(np.int32)
  for index, name in enumerate(data.TRAIN_BATCHES):
    start = index * num_per_batch
    cifar_writer.write_batch(
        os.path.join(batches, name), _rows_for(first + start, num_per_batch),
        train_labels[start:start + num_per_batch],
        batch_label=f"training batch {index + 1} of 5")
  cifar_writer.write_batch(
      os.path.join(batches, data.TEST_BATCH),
      _rows_for(first + num_train, num_per_batch), test_labels,
      batch_label="testing batch 1 of 1")
  cifar_writer.write_meta(os.path.join(batches, data.META_FILE),
                          num_cases_per_batch=num_per_batch)
  expected = data.Dataset(
      train_images=_images_for(first, num_train), train_labels=train_labels,
      test_images=_images_for(first + num_train, num_per_batch),
      test_labels=test_labels, class_names=data.CLASS_NAMES)
  return batches, expected


def write_tar_gz(path, files, symlinks=(), directories=(data.BATCHES_DIRNAME,),
                 hardlinks=()):
  """Writes a .tar.gz with exactly the given members, in the given order.

  Args:
    path: the archive to write.
    files: dict of member name -> bytes (names are used verbatim, so "../x"
      or "/etc/x" make a malicious archive).
    symlinks: (member name, link target) pairs.
    directories: directory members, written first.
    hardlinks: (member name, name of the member it links to) pairs.
  """
  with tarfile.open(path, "w:gz") as tar:
    for name in directories:
      info = tarfile.TarInfo(name)
      info.type = tarfile.DIRTYPE
      info.mode = 0o755
      tar.addfile(info)
    for name, payload in files.items():
      info = tarfile.TarInfo(name)
      info.size = len(payload)
      info.mode = 0o644
      tar.addfile(info, io.BytesIO(payload))
    for links, link_type in ((symlinks, tarfile.SYMTYPE),
                             (hardlinks, tarfile.LNKTYPE)):
      for name, target in links:
        info = tarfile.TarInfo(name)
        info.type = link_type
        info.linkname = target
        tar.addfile(info)


def official_members(num_per_batch=3, seed=0):
  """The files of a small official archive, as {member name: bytes}, and the
  expected dataset."""
  with tempfile.TemporaryDirectory() as staging:
    batches, expected = write_batches_folder(staging, num_per_batch, seed)
    files = {}
    for name in data.TRAIN_BATCHES + (data.TEST_BATCH, data.META_FILE):
      with open(os.path.join(batches, name), "rb") as f:
        files[f"{data.BATCHES_DIRNAME}/{name}"] = f.read()
  return files, expected


def write_cifar_archive(folder, num_per_batch=3, seed=0):
  """Writes folder/cifar-10-python.tar.gz laid out like the official one.

  Returns:
    (archive path, expected `data.Dataset` in the "nhwc" layout).
  """
  os.makedirs(folder, exist_ok=True)
  files, expected = official_members(num_per_batch, seed)
  archive = os.path.join(folder, cifar10.ARCHIVE_NAME)
  write_tar_gz(archive, files)
  return archive, expected


def py2_meta_pickle(names):
  """batches.meta as Python 2 pickled it: {'label_names': [str, ...]}, where a
  Python 2 str is any bytes (SHORT_BINSTRING)."""
  def string(raw):
    assert len(raw) < 256
    return b"U" + bytes([len(raw)]) + raw
  return (b"\x80\x02}" + string(b"label_names") + b"](" +
          b"".join(string(name) for name in names) + b"es.")


def sha256_of(payload):
  return hashlib.sha256(payload).hexdigest()


def os_system_gadget(command):
  """A protocol-2 pickle that calls os.system(command) when plainly loaded.

  Hand-built so the test does not depend on how `pickle` pickles functions:
  GLOBAL 'os system', the command as SHORT_BINSTRING, TUPLE1, REDUCE, STOP.
  """
  command = command.encode()
  assert len(command) < 256
  return (b"\x80\x02" + b"cos\nsystem\n"  # PROTO 2, GLOBAL os.system.
          + b"U" + struct.pack("<B", len(command)) + command  # SHORT_BINSTRING.
          + b"\x85R.")  # TUPLE1, REDUCE (call it), STOP.


# ---------------------------------------------------------------------------
# The loopback HTTP server.


@dataclasses.dataclass
class Route:
  """How the server answers one path.

  Attributes:
    body: the bytes it sends.
    status: HTTP status; 404 sends no body.
    content_length: the Content-Length it claims; None means len(body). A
      larger value makes a truncated download.
    delay_s: seconds to wait before answering (timeout tests).
    stall_s: seconds to wait after the body before closing (a download
      that hangs mid-way, to be interrupted).
  """

  body: bytes = b""
  status: int = 200
  content_length: int = None
  delay_s: float = 0.0
  stall_s: float = 0.0


class LoopbackServer:
  """What `loopback_server` yields: the base URL and the paths requested."""

  def __init__(self, base_url):
    self.base_url = base_url
    self.requested_paths = []

  def url(self, path):
    return self.base_url + path


@contextlib.contextmanager
def loopback_server(routes):
  """Serves `routes` ({path: Route}) on 127.0.0.1 from a background thread.

  Unknown paths get 404. On exit, waiting handlers are woken and the server
  stops, so a slow route cannot hang the test run.
  """
  stop = threading.Event()
  state = None

  class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # pylint: disable=invalid-name
      state.requested_paths.append(self.path)
      route = routes.get(self.path)
      if route is None or route.status == 404:
        self.send_error(404)
        return
      if route.delay_s:
        stop.wait(route.delay_s)  # Returns early when the test is over.
      self.send_response(route.status)
      length = (len(route.body) if route.content_length is None
                else route.content_length)
      self.send_header("Content-Length", str(length))
      self.end_headers()
      try:
        self.wfile.write(route.body)
        if route.stall_s:
          self.wfile.flush()
          stop.wait(route.stall_s)
      except OSError:  # The client gave up (e.g. it timed out).
        pass
      self.close_connection = True  # The client sees EOF after the body.

    def log_message(self, *args):  # Keep test output quiet.
      pass

  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
  server.daemon_threads = True
  state = LoopbackServer(f"http://127.0.0.1:{server.server_address[1]}")
  # A short poll interval makes shutdown() (and so each test) quick.
  thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                            daemon=True)
  thread.start()
  try:
    yield state
  finally:
    stop.set()
    server.shutdown()
    server.server_close()
    thread.join()


def closed_port_url(path="/cifar-10-python.tar.gz"):
  """A 127.0.0.1 URL on a port that was just free, so connecting is refused."""
  with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
  return f"http://127.0.0.1:{port}{path}"


def leftover_files(folder):
  """Every file and folder under `folder`, relative, sorted (none: [])."""
  if not os.path.isdir(folder):
    return []
  found = []
  for root, dirs, files in os.walk(folder):
    for name in dirs + files:
      found.append(os.path.relpath(os.path.join(root, name), folder))
  return sorted(found)
