"""Tests of tf_raw/data.py: the Python 2 byte form and the safe reader.

The oracles: `pickletools` (which opcodes and globals the bytes contain) and
plain `pickle.loads(..., encoding="bytes")`, the reader the CIFAR-10 page
itself recommends, for the values.
"""

import io
import os
import pathlib
import pickle
import pickletools
import shlex
import struct
import warnings

import numpy as np
import pytest

from tests import cifar_fixtures
from tf_raw import data
from tf_raw.tools import cifar_writer

# Every opcode a Python 2 cPickle protocol-2 dump of a batch may contain.
PY2_OPCODES = {
    "PROTO", "EMPTY_DICT", "MARK", "SETITEM", "SETITEMS", "EMPTY_LIST",
    "APPEND", "APPENDS", "SHORT_BINSTRING", "BINSTRING", "BININT1", "BININT2",
    "BININT", "NONE", "NEWFALSE", "NEWTRUE", "GLOBAL", "EMPTY_TUPLE", "TUPLE1",
    "TUPLE2", "TUPLE3", "TUPLE", "REDUCE", "BUILD", "BINPUT", "LONG_BINPUT",
    "BINGET", "LONG_BINGET", "STOP",
}
PY2_GLOBALS = {"numpy.core.multiarray _reconstruct", "numpy ndarray",
               "numpy dtype"}


class _Py2StylePickler(pickle._Pickler):  # pylint: disable=protected-access
  """An independent writer: Python's own pickler, taught what Python 2 wrote.

  The pure-Python pickler of the standard library, at protocol 2, with three
  changes that make it write what CPython 2's cPickle and NumPy 1.x did:
  `bytes` and `str` as Python 2 `str` (SHORT_BINSTRING / BINSTRING), NumPy's
  `_reconstruct` under its NumPy 1.x module name, and the dtype's
  (kind, align, copy) arguments as the ints 0 and 1 NumPy 1.x gave. Like
  cPickle (and unlike `cifar_writer`), it memoizes: BINPUT after objects,
  BINGET for an object met twice.
  """

  dispatch = dict(pickle._Pickler.dispatch)  # pylint: disable=protected-access

  def save_py2_str(self, obj):
    if isinstance(obj, str):
      obj = obj.encode("ascii")
    if len(obj) < 256:
      self.write(pickle.SHORT_BINSTRING + struct.pack("<B", len(obj)) + obj)
    else:
      self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
    self.memoize(obj)

  dispatch[bytes] = save_py2_str
  dispatch[str] = save_py2_str

  def save_global(self, obj, name=None):
    if obj is _RECONSTRUCT:
      self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
      self.memoize(obj)
    else:
      super().save_global(obj, name)

  def reducer_override(self, obj):
    if isinstance(obj, np.dtype):
      constructor, (kind, align, copy), state = obj.__reduce__()
      return constructor, (kind, int(align), int(copy)), state
    return NotImplemented


_RECONSTRUCT = np.ndarray((0,), np.uint8).__reduce__()[0]


def _py2_style_dumps(obj):
  buffer = io.BytesIO()
  _Py2StylePickler(buffer, protocol=2).dump(obj)
  return buffer.getvalue()


def _rows(num_images, seed=0):
  return np.random.default_rng(seed).integers(
      0, 256, (num_images, 3072), dtype=np.uint8)


def _opcodes_and_globals(payload):
  opcodes, globals_ = set(), set()
  for opcode, arg, _ in pickletools.genops(payload):
    opcodes.add(opcode.name)
    if opcode.name == "GLOBAL":
      globals_.add(arg)
  return opcodes, globals_


def _write(tmp_path, payload, name="data_batch_1"):
  path = tmp_path / name
  path.write_bytes(payload)
  return str(path)


def test_writer_emits_only_python2_opcodes_and_globals():
  payload = cifar_writer.encode_batch(_rows(3), [6, 9, 9])
  opcodes, globals_ = _opcodes_and_globals(payload)
  assert opcodes <= PY2_OPCODES, opcodes - PY2_OPCODES
  assert globals_ == PY2_GLOBALS
  assert "BINSTRING" in opcodes  # The 9216 raw array bytes, a py2 str.
  assert payload.startswith(b"\x80\x02}")  # PROTO 2, EMPTY_DICT.


@pytest.mark.parametrize("num_images", [1, 1001])
def test_writer_bytes_equal_an_independent_py2_pickle_minus_memo_opcodes(
    num_images):
  # What "byte for byte" means: the writer's bytes are exactly those of the
  # independent writer above once pickletools.optimize has dropped its
  # (unused) BINPUT memo opcodes, the one thing cPickle wrote that the writer
  # leaves out.
  rows = _rows(num_images, seed=num_images)
  labels = [int(label) for label in np.arange(num_images) % 10]
  names = [f"img_{index}.png" for index in range(num_images)]
  ours = cifar_writer.encode_batch(rows, labels, "testing batch 1 of 1",
                                   names)
  theirs = _py2_style_dumps({
      b"batch_label": b"testing batch 1 of 1", b"labels": labels,
      b"data": rows, b"filenames": [name.encode() for name in names]})
  assert "BINPUT" in _opcodes_and_globals(theirs)[0]
  assert ours != theirs
  assert pickletools.optimize(theirs) == ours
  meta = _py2_style_dumps({
      b"num_cases_per_batch": 10000,
      b"label_names": [name.encode() for name in data.CLASS_NAMES],
      b"num_vis": 3072})
  assert pickletools.optimize(meta) == cifar_writer.encode_meta()


def test_reader_reads_independent_py2_pickles_with_memo_opcodes(tmp_path):
  # Not the project's writer: BINPUT after objects, and BINGET where the same
  # filename object comes twice, as cPickle wrote them.
  rows, labels = _rows(5, seed=3), [3, 1, 4, 1, 5]
  shared_name = b"same.png"
  payload = _py2_style_dumps({
      b"batch_label": b"training batch 3 of 5", b"labels": labels,
      b"data": rows, b"filenames": [shared_name] * 5})
  opcodes, globals_ = _opcodes_and_globals(payload)
  assert {"BINPUT", "BINGET"} <= opcodes <= PY2_OPCODES
  assert globals_ == PY2_GLOBALS
  read_rows, read_labels = data.read_batch(_write(tmp_path, payload))
  np.testing.assert_array_equal(read_rows, rows)
  np.testing.assert_array_equal(read_labels, labels)
  names = [name.encode() for name in ("plane", "car", "bird")]
  meta = _py2_style_dumps({b"num_cases_per_batch": 10000,
                           b"label_names": names, b"num_vis": 3072})
  assert data.read_meta(_write(tmp_path, meta, "batches.meta")) == (
      "plane", "car", "bird")


def test_python3_pickler_fails_the_same_check():
  # Why the writer exists: Python 3's own protocol 2 is a different byte form.
  payload = pickle.dumps({b"data": _rows(1), b"labels": [1]}, protocol=2)
  opcodes, globals_ = _opcodes_and_globals(payload)
  assert not opcodes <= PY2_OPCODES or globals_ != PY2_GLOBALS
  assert "_codecs encode" in globals_  # bytes become _codecs.encode calls.


def test_writer_output_loads_with_plain_pickle():
  rows = _rows(4)
  labels = [0, 9, 3, 3]
  payload = cifar_writer.encode_batch(
      rows, labels, batch_label="training batch 2 of 5",
      filenames=["a.png", "b.png", "c.png", "d.png"])
  batch = pickle.loads(payload, encoding="bytes")
  # Keys in the order Python 3 shows for the official files.
  assert list(batch) == [b"batch_label", b"labels", b"data", b"filenames"]
  assert batch[b"batch_label"] == b"training batch 2 of 5"
  assert batch[b"labels"] == labels
  assert batch[b"data"].dtype == np.uint8
  np.testing.assert_array_equal(batch[b"data"], rows)
  assert batch[b"filenames"] == [b"a.png", b"b.png", b"c.png", b"d.png"]


@pytest.mark.parametrize("num_images", [1, 2, 1000, 1001, 2500])
def test_round_trip_through_restricted_reader(tmp_path, num_images):
  # 1 and 1001 hit cPickle's single APPEND; 1000 and 2500 its batching.
  rows = _rows(num_images, seed=num_images)
  labels = np.arange(num_images) % 10
  path = str(tmp_path / "data_batch_1")
  cifar_writer.write_batch(path, rows, labels)
  read_rows, read_labels = data.read_batch(path)
  np.testing.assert_array_equal(read_rows, rows)
  np.testing.assert_array_equal(read_labels, labels)
  assert read_labels.dtype == np.int32
  assert pickle.loads(pathlib.Path(path).read_bytes(), encoding="bytes")[
      b"labels"] == labels.tolist()
  assert os.listdir(tmp_path) == ["data_batch_1"]  # No temporary file left.


def test_meta_round_trip_and_plain_pickle(tmp_path):
  path = str(tmp_path / "batches.meta")
  cifar_writer.write_meta(path)
  assert data.read_meta(path) == data.CLASS_NAMES
  meta = pickle.loads(pathlib.Path(path).read_bytes(), encoding="bytes")
  assert meta == {b"num_cases_per_batch": 10000,
                  b"label_names": [name.encode()
                                   for name in data.CLASS_NAMES],
                  b"num_vis": 3072}
  opcodes, globals_ = _opcodes_and_globals(pathlib.Path(path).read_bytes())
  assert opcodes <= PY2_OPCODES and not globals_


def test_reader_loads_old_numpy_name_without_deprecation_warning(tmp_path):
  path = _write(tmp_path, cifar_writer.encode_batch(_rows(2), [1, 2]))
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    rows, _ = data.read_batch(path)
  assert rows.shape == (2, 3072)


def test_reader_accepts_numpy2_module_name(tmp_path):
  # Protocol 3 from NumPy 2 names numpy._core.multiarray._reconstruct.
  rows = _rows(2)
  payload = pickle.dumps({b"data": rows, b"labels": [4, 5]}, protocol=3)
  _, globals_ = _opcodes_and_globals(payload)
  assert "numpy._core.multiarray _reconstruct" in globals_
  read_rows, read_labels = data.read_batch(_write(tmp_path, payload))
  np.testing.assert_array_equal(read_rows, rows)
  np.testing.assert_array_equal(read_labels, [4, 5])


def test_os_system_gadget_is_refused_without_running(tmp_path):
  # First show the gadget is real: plain pickle runs the command.
  proof = tmp_path / "plain_pickle_ran_it"
  gadget = cifar_fixtures.os_system_gadget(f"touch {shlex.quote(str(proof))}")
  pickle.loads(gadget, encoding="bytes")
  assert proof.exists()
  marker = tmp_path / "restricted_reader_ran_it"
  path = _write(tmp_path, cifar_fixtures.os_system_gadget(
      f"touch {shlex.quote(str(marker))}"))
  with pytest.raises(data.FormatError,
                     match=r"data_batch_1 is not a CIFAR-10 batch and may be "
                     r"malicious .*os\.system"):
    data.read_batch(path)
  assert not marker.exists()


def test_python3_protocol5_numpy_pickle_is_refused(tmp_path):
  # NumPy 2 at protocol 5 uses numpy._core.numeric._frombuffer: not CIFAR's.
  payload = pickle.dumps({b"data": _rows(1), b"labels": [0]}, protocol=5)
  with pytest.raises(data.FormatError, match="_frombuffer"):
    data.read_batch(_write(tmp_path, payload))


@pytest.mark.parametrize("cut", [1, 100, 5000, -1])
def test_truncated_pickle_names_the_file(tmp_path, cut):
  payload = cifar_writer.encode_batch(_rows(2), [1, 2])
  path = _write(tmp_path, payload[:cut])
  with pytest.raises(data.FormatError,
                     match=r"data_batch_1 is not a readable CIFAR-10 batch "
                     r"\(truncated or corrupt"):
    data.read_batch(path)


def test_garbage_file_and_missing_file(tmp_path):
  with pytest.raises(data.FormatError, match="truncated or corrupt"):
    data.read_batch(_write(tmp_path, b"<html>not found</html>"))
  missing = str(tmp_path / "nothing")
  with pytest.raises(data.FormatError) as error:
    data.read_batch(missing)
  assert str(error.value) == (
      f"Could not read {missing} (No such file or directory); check that the "
      "file exists and is readable.")


def test_wrong_shape_is_reported(tmp_path):
  payload = cifar_writer.encode_batch(_rows(2), [1, 2])
  # Same bytes, shape (2, 3072) patched to (4, 1536): BININT1 2, BININT2 3072.
  patched = payload.replace(b"K\x02M\x00\x0c\x86", b"K\x04M\x00\x06\x86", 1)
  assert patched != payload
  assert pickle.loads(patched, encoding="bytes")[b"data"].shape == (4, 1536)
  with pytest.raises(data.FormatError,
                     match=r"shape \(4, 1536\) .* \(N, 3072\)"):
    data.read_batch(_write(tmp_path, patched))


def test_wrong_dtype_is_reported(tmp_path):
  payload = cifar_writer.encode_batch(_rows(2), [1, 2])
  patched = payload.replace(b"U\x02u1", b"U\x02i1", 1)  # uint8 -> int8.
  assert pickle.loads(patched, encoding="bytes")[b"data"].dtype == np.int8
  with pytest.raises(data.FormatError, match="type int8"):
    data.read_batch(_write(tmp_path, patched))


def test_labels_out_of_range_and_wrong_count(tmp_path):
  path = _write(tmp_path, cifar_writer.encode_batch(_rows(3), [1, 10, 2]))
  with pytest.raises(data.FormatError,
                     match=r"data_batch_1 has label 10 at index 1, "
                     r"outside 0\.\.9"):
    data.read_batch(path)
  payload = pickle.dumps({b"data": _rows(3), b"labels": [1, 2]}, protocol=3)
  with pytest.raises(data.FormatError, match="3 images but its labels"):
    data.read_batch(_write(tmp_path, payload))


def test_not_a_dict_and_bad_meta(tmp_path):
  with pytest.raises(data.FormatError, match="expected a dict"):
    data.read_batch(_write(tmp_path, pickle.dumps([1, 2], protocol=2)))
  path = _write(tmp_path, pickle.dumps({b"label_names": []}, protocol=3),
                name="batches.meta")
  with pytest.raises(data.FormatError,
                     match="batches.meta is not a CIFAR-10 batches.meta"):
    data.read_meta(path)


def test_persistent_ids_are_refused(tmp_path):
  # PERSID: "load the object with id 'x' from elsewhere", which a CIFAR-10
  # batch never does (plain pickle.loads would fail: no persistent_load).
  path = _write(tmp_path, b"Px\n.")
  with pytest.raises(data.FormatError) as error:
    data.read_batch(path)
  assert str(error.value) == (
      f"{path} is not a CIFAR-10 batch (it uses persistent ids), so delete "
      "it and extract CIFAR-10 again.")


@pytest.mark.parametrize("names, problem", [
    ([b"cat", b"\xff\xfe"], "a class name that is not UTF-8 text "
                            "(invalid start byte)"),
    ([b"cat", b""], "an empty or unprintable class name"),
    ([b"cat", b"   "], "an empty or unprintable class name"),
    ([b"cat", b"do\x07g"], "an empty or unprintable class name"),
])
def test_meta_names_must_be_printable_text(tmp_path, names, problem):
  path = _write(tmp_path, _py2_style_dumps({b"label_names": names}),
                name="batches.meta")
  with pytest.raises(data.FormatError) as error:
    data.read_meta(path)
  assert str(error.value) == (
      f"{path} holds {problem}, so rebuild it with "
      "tf_raw.tools.cifar_writer.write_meta.")
