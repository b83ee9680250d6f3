"""Property tests (Hypothesis) for every reader a user can feed.

Flag values, CIFAR-10 batch files, batches.meta, metrics.jsonl,
run_config.json and the image-folder cache: for any generated input the
reader either succeeds with a well-formed result or raises its one-sentence
user error (exit 2 for a flag), never anything else, and leaves the file it
read exactly as it was.

Each property runs a fixed, seeded set of examples (`derandomize`), so a run
is repeatable and its time bounded; `EXAMPLES` says how many.
"""

import contextlib
import io
import json
import os
import pickle
import tempfile

from absl import flags
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np
import pytest

from flags import cli
from flags import train_flags
from tests import cifar_fixtures
from tf_raw import data
from tf_raw.run_folder import run_dir
from tf_raw.sources import image_folder

EXAMPLES = 150  # Per property; all six take a few seconds together.
_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.too_slow,
                                            HealthCheck.data_too_large])


@contextlib.contextmanager
def _file_holding(name, contents):
  """A fresh folder with one file `name` holding `contents` (bytes)."""
  with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
      f.write(contents)
    yield folder, path
    with open(path, "rb") as f:
      assert f.read() == contents, f"{name} was changed by reading it"


def _one_sentence(error):
  text = str(error)
  assert text and "\n" not in text and "Traceback" not in text, text


# ---------------------------------------------------------------------------
# Flag values.

_TRAIN_FLAGS = sorted(
    flag.name for flag in flags.FLAGS.get_key_flags_for_module(train_flags)
    if flag.name not in ("flagfile", "undefok"))
_VALUES = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "-1", "0", "1", "2**63",
                     "9223372036854775808", "1e9", "0x10", "true", "~",
                     "[", "*", "http://[::1/x", "file:///x", "\udcff",
                     " ", "", "1.5", "-0.0"]),
    st.integers(-2**70, 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr))


@_SETTINGS
@given(name=st.sampled_from(_TRAIN_FLAGS), value=_VALUES)
def test_any_train_flag_value_parses_or_is_one_usage_line(name, value):
  flags.FLAGS.unparse_flags()
  stderr = io.StringIO()
  try:
    with contextlib.redirect_stderr(stderr):
      cli.parse_flags_or_exit(["train", f"--{name}={value}",
                               "--model_dir=/nonexistent/run"])
  except SystemExit as exit_:
    assert exit_.code == 2
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
  else:
    train_flags.to_config()  # Its asserts hold for every accepted value.
  finally:
    flags.FLAGS.unparse_flags()


# ---------------------------------------------------------------------------
# Batch files and batches.meta: bytes, and pickles of the right shape with
# wrong insides.

_ARRAYS = st.one_of(
    st.builds(lambda n, d: np.zeros((n, d), np.uint8),
              st.integers(0, 3), st.sampled_from([3072, 3071, 1])),
    st.builds(lambda n: np.zeros((n, 3072), np.float32), st.integers(0, 2)),
    st.builds(lambda n: np.zeros(n, np.uint8), st.integers(0, 3)),
    st.none(), st.integers(), st.text(max_size=5))
_LABELS = st.one_of(
    st.lists(st.integers(-3, 12), max_size=4),
    st.lists(st.floats(allow_nan=True), max_size=3),
    st.lists(st.text(max_size=2), max_size=3), st.none(), st.integers())
_BATCH_PICKLES = st.builds(
    lambda payload, protocol: pickle.dumps(payload, protocol=protocol),
    st.one_of(
        st.fixed_dictionaries({b"data": _ARRAYS, b"labels": _LABELS}),
        st.dictionaries(st.binary(max_size=8), _LABELS, max_size=3),
        st.lists(st.integers(), max_size=3)),
    st.sampled_from([2, 4]))


@_SETTINGS
@given(contents=st.one_of(st.binary(max_size=300), _BATCH_PICKLES,
                          _BATCH_PICKLES.map(lambda b: b[:len(b) // 2])))
def test_any_batch_file_reads_or_is_one_format_error(contents):
  with _file_holding("data_batch_1", contents) as (_, path):
    try:
      rows, labels = data.read_batch(path)
    except data.FormatError as error:
      _one_sentence(error)
    else:
      assert rows.dtype == np.uint8 and rows.shape[1:] == (3072,)
      assert labels.dtype == np.int32 and len(labels) == len(rows)
      assert labels.min() >= 0 and labels.max() < data.NUM_CLASSES


_NAMES = st.lists(st.one_of(st.binary(max_size=6), st.text(max_size=4),
                            st.integers()), max_size=12)


@_SETTINGS
@given(contents=st.one_of(
    st.binary(max_size=200),
    # As Python 2 wrote them: any bytes as a name (the official format).
    st.lists(st.binary(max_size=8), max_size=12).map(
        cifar_fixtures.py2_meta_pickle),
    st.builds(lambda names: pickle.dumps({b"label_names": names}, protocol=2),
              _NAMES),
    st.builds(lambda names: pickle.dumps({"label_names": names}), _NAMES)))
def test_any_batches_meta_reads_or_is_one_format_error(contents):
  with _file_holding("batches.meta", contents) as (_, path):
    try:
      names = data.read_meta(path)
    except data.FormatError as error:
      _one_sentence(error)
    else:
      assert names and all(isinstance(n, str) and n.strip() and
                           n.isprintable() for n in names)


# ---------------------------------------------------------------------------
# The run folder's files.

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**65, 2**65) |
    st.floats(allow_nan=False) | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3) |
    st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8)
_RECORD = st.fixed_dictionaries(
    {"step": st.one_of(st.integers(-5, 50), _JSON)},
    optional={"accuracy": _JSON, "epoch": _JSON})
_LINE = st.one_of(_JSON.map(json.dumps), _RECORD.map(json.dumps),
                  st.binary(max_size=20).map(
                      lambda b: b.decode("latin-1")))


@_SETTINGS
@given(lines=st.lists(st.one_of(_LINE.map(str.encode),
                                st.binary(max_size=20)), max_size=6),
       torn=st.booleans())
def test_any_metrics_file_reads_as_records(lines, torn):
  contents = b"\n".join(line.replace(b"\n", b" ") for line in lines)
  contents += b"" if torn or not lines else b"\n"
  with _file_holding(run_dir.METRICS_FILE, contents) as (folder, _):
    records = run_dir.read_metrics(folder)
    assert all(isinstance(r, dict) and type(r["step"]) is int  # pylint: disable=unidiomatic-typecheck
               for r in records)


@_SETTINGS
@given(contents=st.one_of(
    _JSON.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda identity: json.dumps(
        {"version": 1, "identity": identity}).encode(), _JSON),
    st.binary(max_size=60)))
def test_any_run_config_is_checked_or_one_run_dir_error(contents):
  with _file_holding(run_dir.RUN_CONFIG_FILE, contents) as (folder, _):
    # A checkpoint index makes check_identity read run_config.json.
    open(os.path.join(folder, run_dir.CHECKPOINT_STATE_FILE), "w").close()
    identity = {"seed": 0, "batch_size": 128}
    try:
      run_dir.check_identity(folder, identity)
    except run_dir.RunDirError as error:
      _one_sentence(error)


def _npz_bytes(arrays):
  buffer = io.BytesIO()
  np.savez(buffer, **arrays)
  return buffer.getvalue()


_CACHE_ARRAYS = st.one_of(
    st.builds(lambda n: np.zeros((n, 32, 32, 3), np.uint8), st.integers(0, 3)),
    st.builds(lambda n: np.zeros((n, 32, 32, 3), np.float32),
              st.integers(0, 2)),
    st.builds(lambda n: np.zeros((n, 3), np.uint8), st.integers(0, 3)))


@_SETTINGS
@given(contents=st.one_of(
    st.binary(max_size=300),
    st.builds(lambda a: _npz_bytes({"images": a}), _CACHE_ARRAYS),
    st.builds(lambda a: _npz_bytes({"other": a}), _CACHE_ARRAYS),
    st.builds(lambda a, cut: _npz_bytes({"images": a})[:cut], _CACHE_ARRAYS,
              st.integers(0, 400))))
def test_any_image_cache_is_used_or_ignored(contents):
  with _file_holding("cache.npz", contents) as (_, path):
    images = image_folder._read_cache(path, 2)  # pylint: disable=protected-access
    assert images is None or (images.dtype == np.uint8 and
                              images.shape == (2, 32, 32, 3))


@pytest.mark.parametrize("reader", ["read_metrics", "check_identity"])
def test_a_missing_file_is_no_error(tmp_path, reader):
  if reader == "read_metrics":
    assert run_dir.read_metrics(str(tmp_path)) == []
  else:
    run_dir.check_identity(str(tmp_path), {"seed": 0})
