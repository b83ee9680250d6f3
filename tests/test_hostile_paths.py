"""Every program against a matrix of hostile paths, and a full disk.

For each program that takes a path (train: --model_dir; export: --export_dir;
predict: --image and --saved_model) and each kind of hostile path (glob
characters, `~`, spaces, unicode, bytes that are not UTF-8, a file where a
folder is expected, a read-only folder, a full disk), the program either
works (and the result is where the path says) or prints one line on stderr
and exits with the documented status; either way nothing that existed
before is changed. No case may show a traceback.

Programs run in-process (tests/program_fixtures.py), except the read-only
cases, which need a child whose file permissions bind even as root
(cli_fixtures.permission_bound_command). The full-disk cases mount a small
tmpfs (root only), and are skipped with the reason where that fails.
"""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from tests import cifar_fixtures
from tests import cli_fixtures
from tests import program_fixtures
from tf_raw import train
from tf_raw.sources import cifar10
from tf_raw.tools import export
from tf_raw.tools import predict

TINY = ["--dataset=synthetic", "--synthetic_train_size=32",
        "--synthetic_test_size=16", "--epochs=1", "--batch_size=16",
        "--noshuffle", "--log_every_steps=0", "--checkpoint_every_steps=0",
        "--noprint_predictions"]

# name -> (relative path; "~" paths are under $HOME = case/home).
HOSTILE = {
    "glob": "r[1]*?",
    "tilde": "~/r",
    "spaces": "my run  two",
    "unicode": "rün_模型_ü",
    "not_utf8": os.fsdecode(b"r\xff\xfe"),
    "file_for_folder": "a_file/r",
}


def _resolve(case, relative):
  if relative.startswith("~/"):
    return os.path.join(case, "home", relative[2:])
  return os.path.join(case, relative)


def _prepare(case):
  os.makedirs(os.path.join(case, "home"))
  with open(os.path.join(case, "a_file"), "w") as f:
    f.write("a file, not a folder")


def _assert_outcome(code, stderr, before, after, expected_codes):
  assert "Traceback" not in stderr, stderr
  assert code in expected_codes, (code, stderr)
  if code != 0:
    assert len(cli_fixtures.error_lines(stderr)) == 1, stderr
    assert after == before, "a failed run changed files"
  else:
    assert {k: after.get(k) for k in before} == before, "existing files changed"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  model_dir = tmp_path_factory.mktemp("tiny") / "run"
  code, stdout, stderr = program_fixtures.run_program(
      train, [*TINY, f"--model_dir={model_dir}"])
  assert code == 0, stdout + stderr
  return str(model_dir)


@pytest.fixture(scope="module")
def saved_model(tiny_run, tmp_path_factory):
  export_dir = str(tmp_path_factory.mktemp("export") / "1")
  code, stdout, stderr = program_fixtures.run_program(
      export, [f"--model_dir={tiny_run}", f"--export_dir={export_dir}"])
  assert code == 0, stdout + stderr
  return export_dir


_PNG = bytes.fromhex(  # A 1x1 black greyscale PNG.
    "89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b55"
    "0000000a49444154789c636000000002000148afa4710000000049454e44ae426082")

# Which exit statuses each program may give for each kind (0: it works).
TRAIN_EXPECTED = {"glob": {2}, "tilde": {0}, "spaces": {0}, "unicode": {0},
                  "not_utf8": {2}, "file_for_folder": {1}}
EXPORT_EXPECTED = {"glob": {2}, "tilde": {0}, "spaces": {0}, "unicode": {0},
                   "not_utf8": {2}, "file_for_folder": {1}}
# --saved_model is a checkpoint path too: glob characters and non-UTF-8
# names are refused like --model_dir's (TensorFlow could not load it).
PREDICT_EXPECTED = {"glob": {2}, "tilde": {0}, "spaces": {0}, "unicode": {0},
                    "not_utf8": {2}, "file_for_folder": {1}}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_train_model_dir(kind, tmp_path, monkeypatch):
  case = str(tmp_path)
  _prepare(case)
  monkeypatch.setenv("HOME", os.path.join(case, "home"))
  before = cli_fixtures.snapshot(case)
  code, _, stderr = program_fixtures.run_program(
      train, [*TINY, f"--model_dir={HOSTILE[kind] if kind == 'tilde' else _resolve(case, HOSTILE[kind])}"])
  _assert_outcome(code, stderr, before, cli_fixtures.snapshot(case),
                  TRAIN_EXPECTED[kind])
  if code == 0:
    assert os.path.exists(
        os.path.join(_resolve(case, HOSTILE[kind]), "checkpoint"))


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_export_dir(kind, tiny_run, tmp_path, monkeypatch):
  case = str(tmp_path)
  _prepare(case)
  monkeypatch.setenv("HOME", os.path.join(case, "home"))
  before = cli_fixtures.snapshot(case)
  given = HOSTILE[kind] if kind == "tilde" else _resolve(case, HOSTILE[kind])
  code, _, stderr = program_fixtures.run_program(
      export, [f"--model_dir={tiny_run}", f"--export_dir={given}"])
  _assert_outcome(code, stderr, before, cli_fixtures.snapshot(case),
                  EXPORT_EXPECTED[kind])
  if code == 0:
    assert os.path.exists(
        os.path.join(_resolve(case, HOSTILE[kind]), "saved_model.pb"))


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_predict_image_and_saved_model(kind, saved_model, tmp_path,
                                       monkeypatch):
  case = str(tmp_path)
  _prepare(case)
  monkeypatch.setenv("HOME", os.path.join(case, "home"))
  folder = _resolve(case, HOSTILE[kind])
  given = HOSTILE[kind] if kind == "tilde" else folder
  if kind != "file_for_folder":
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "a.png"), "wb") as f:  # Any name.
      f.write(_PNG)
    shutil.copytree(saved_model, os.path.join(folder, "model"))
  before = cli_fixtures.snapshot(case)
  code, stdout, stderr = program_fixtures.run_program(
      predict, [f"--saved_model={os.path.join(given, 'model')}",
                f"--image={os.path.join(given, 'a.png')}"])
  _assert_outcome(code, stderr, before, cli_fixtures.snapshot(case),
                  PREDICT_EXPECTED[kind])
  if code == 0:
    assert stdout.count("\n") == 1, stdout


# ---------------------------------------------------------------------------
# Read-only: a child process whose permissions bind even as root.


def _run_bound(*args):
  command = cli_fixtures.permission_bound_command(
      [sys.executable, "-m", *args])
  if command is None:
    pytest.skip("running as root without setpriv: read-only cannot bind")
  return cli_fixtures.run_train(command=command)


def test_read_only_folders(tiny_run, tmp_path):
  read_only = tmp_path / "ro"
  read_only.mkdir()
  read_only.chmod(0o555)
  before = cli_fixtures.snapshot(str(tmp_path))
  try:
    train_result = _run_bound("tf_raw.train", *TINY,
                              f"--model_dir={read_only / 'run'}")
    export_result = _run_bound("tf_raw.tools.export",
                               f"--model_dir={tiny_run}",
                               f"--export_dir={read_only / 'e'}")
  finally:
    read_only.chmod(0o755)
  for result in (train_result, export_result):
    _assert_outcome(result.returncode, result.stderr, before,
                    cli_fixtures.snapshot(str(tmp_path)), {1})
    assert str(read_only) in result.stderr


# ---------------------------------------------------------------------------
# A full disk: a small tmpfs.


@contextlib.contextmanager
def _small_filesystem(size_kib):
  folder = tempfile.mkdtemp(prefix="tf_raw_full_disk_")
  result = subprocess.run(
      ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", folder],
      capture_output=True, text=True, check=False)
  if result.returncode != 0:
    os.rmdir(folder)
    pytest.skip("cannot mount a small tmpfs here (needs root): "
                + (result.stderr.strip() or "mount failed"))
  try:
    yield folder
  finally:
    subprocess.run(["umount", folder], check=False)
    os.rmdir(folder)


def _fill(folder, leave_bytes):
  """Fills the filesystem of `folder` until about `leave_bytes` are free."""
  stats = os.statvfs(folder)
  free = stats.f_bavail * stats.f_frsize
  with open(os.path.join(folder, "filler"), "wb") as f:
    f.write(b"\0" * max(0, free - leave_bytes))


def test_full_disk_download_unpack_run_files_tensorboard_checkpoints(
    tmp_path, monkeypatch):
  monkeypatch.setenv("HOME", str(tmp_path / "home"))  # No Keras cache.
  archive, _ = cifar_fixtures.write_cifar_archive(str(tmp_path / "src"))
  with open(archive, "rb") as f:
    payload = f.read()
  sha256 = cifar_fixtures.sha256_of(payload)
  outcomes = {}
  with _small_filesystem(4096) as disk:
    # 1. Download into a cache with no room: the .part file goes.
    cache = os.path.join(disk, "cache")
    os.makedirs(cache)
    _fill(disk, 0)
    with cifar_fixtures.loopback_server(
        {"/c.tar.gz": cifar_fixtures.Route(body=payload)}) as server:
      with pytest.raises(cifar10.data.DataError) as raised:
        cifar10.load_cifar10(None, cache, data_url=server.url("/c.tar.gz"),
                             keras_cache_dir=str(tmp_path / "k"),
                             expected_sha256=sha256, show_progress=False)
    outcomes["download"] = str(raised.value)
    assert os.listdir(cache) == []
    os.remove(os.path.join(disk, "filler"))

    # 2. Unpack a good cached archive with no room: the archive stays.
    shutil.copy(archive, cache)
    _fill(disk, 8 << 10)
    with pytest.raises(cifar10.data.DataError) as raised:
      cifar10.load_cifar10(None, cache, keras_cache_dir=str(tmp_path / "k"),
                           expected_sha256=sha256)
    outcomes["unpack"] = str(raised.value)
    assert os.listdir(cache) == [cifar10.ARCHIVE_NAME]
    os.remove(os.path.join(disk, "filler"))
    os.remove(os.path.join(cache, cifar10.ARCHIVE_NAME))

    # 3. The run's first files, 4. TensorBoard and 5. the checkpoint: the
    # more room is left, the further the run gets before the disk is full.
    for name, leave in (("run files", 0), ("tensorboard", 24 << 10),
                        ("checkpoint", 600 << 10)):
      model_dir = os.path.join(disk, name.replace(" ", "_"))
      _fill(disk, leave)
      code, _, stderr = program_fixtures.run_program(
          train, [*TINY, f"--model_dir={model_dir}"])
      assert code == 1 and "Traceback" not in stderr, stderr
      (line,) = cli_fixtures.error_lines(stderr)
      outcomes[name] = line
      # No half-written checkpoint is left behind.
      if os.path.isdir(model_dir):
        assert not [n for n in os.listdir(model_dir) if n.startswith("ckpt-")]
      shutil.rmtree(model_dir, ignore_errors=True)
      os.remove(os.path.join(disk, "filler"))
  for name, message in outcomes.items():
    assert "No space left on device" in message or "space" in message, (
        name, message)
    assert "damaged" not in message, (name, message)
