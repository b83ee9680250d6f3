"""Writes CIFAR-10 "python version" batch files, exactly as Python 2's cPickle did.

The reader is `tf_raw.data` (`read_batch`, `read_meta`); this is its inverse,
used by the tests (tiny archives in the official format), by
`scripts/jpeg_to_cifar.py` and by the benchmark's full-size epoch:

    encode_batch / write_batch     a data_batch_* or test_batch file
    encode_meta / write_meta       batches.meta

This module imports only numpy, the standard library and `tf_raw.data`.
"""

import pickle
import struct

import numpy as np

from tf_raw import data as data_lib
from tf_raw.run_folder import run_dir

CLASS_NAMES = data_lib.CLASS_NAMES
ROW_LENGTH = data_lib.ROW_LENGTH
OFFICIAL_BATCH_SIZE = data_lib.OFFICIAL_BATCH_SIZE
# cPickle (Python 2) emits APPENDS/SETITEMS in batches of at most this many.
_PICKLE_BATCH_SIZE = 1000


# ---------------------------------------------------------------------------
# Writing, exactly as Python 2's cPickle did.
#
# Python 3's pickler cannot produce these bytes: at protocol 2 it writes bytes
# as `_codecs.encode(str, 'latin1')` calls, strings as BINUNICODE, and NumPy 2
# arrays under `numpy._core`. So the opcodes are written one by one below.
# cPickle also emitted BINPUT memo opcodes after some objects (which ones
# depended on CPython 2 reference counts); nothing in a batch refers back to
# them, so they are left out, which every unpickler accepts.


class _Py2PickleWriter:
  """Appends Python 2 protocol-2 opcodes to a byte buffer, a call per object."""

  def __init__(self):
    self._parts = [pickle.PROTO, bytes([2])]  # PROTO 2: "protocol 2 follows".

  def op(self, opcode):
    """A bare opcode, e.g. pickle.MARK or pickle.REDUCE."""
    self._parts.append(opcode)

  def getvalue(self):
    return b"".join(self._parts + [pickle.STOP])  # STOP: the pickle ends.

  def string(self, value):
    """A Python 2 `str` (a byte string); Python 3 reads it back as bytes."""
    if isinstance(value, str):
      value = value.encode("utf-8")
    if len(value) < 256:
      # SHORT_BINSTRING: 1-byte length, then the bytes.
      self._parts += [pickle.SHORT_BINSTRING, struct.pack("<B", len(value)),
                      value]
    else:
      # BINSTRING: 4-byte little-endian signed length, then the bytes.
      self._parts += [pickle.BINSTRING, struct.pack("<i", len(value)), value]

  def int(self, value):
    value = int(value)
    if 0 <= value <= 0xff:
      # BININT1: 1 unsigned byte.
      self._parts += [pickle.BININT1, struct.pack("<B", value)]
    elif 0 <= value <= 0xffff:
      # BININT2: 2 unsigned bytes, little-endian.
      self._parts += [pickle.BININT2, struct.pack("<H", value)]
    else:
      # BININT: 4 signed bytes, little-endian.
      self._parts += [pickle.BININT, struct.pack("<i", value)]

  def global_(self, module, name):
    # GLOBAL "module\nname\n": the unpickler imports module and pushes name.
    self._parts += [pickle.GLOBAL, f"{module}\n{name}\n".encode("ascii")]

  def list(self, items, write_item):
    """EMPTY_LIST, then the items in batches as cPickle did: MARK items APPENDS
    for each run of up to 1000, or item APPEND for a run of one."""
    self.op(pickle.EMPTY_LIST)
    for start in range(0, len(items), _PICKLE_BATCH_SIZE):
      run = items[start:start + _PICKLE_BATCH_SIZE]
      if len(run) > 1:
        self.op(pickle.MARK)
      for item in run:
        write_item(item)
      self.op(pickle.APPENDS if len(run) > 1 else pickle.APPEND)

  def uint8_dtype(self):
    """np.dtype('uint8') as NumPy 1.x pickled it: dtype.__reduce__() is
    (dtype, ('u1', 0, 1), state), replayed as REDUCE then BUILD."""
    self.global_("numpy", "dtype")
    self.string("u1")
    self.int(0)  # align=0
    self.int(1)  # copy=1
    self.op(pickle.TUPLE3)  # Pop 3 items into the args tuple.
    self.op(pickle.REDUCE)  # dtype('u1', 0, 1).
    self.op(pickle.MARK)  # MARK ... TUPLE: a tuple of everything since MARK.
    self.int(3)  # Pickle version of the dtype state.
    self.string("|")  # Byte order: not applicable to 1-byte values.
    self.op(pickle.NONE)  # Subarray.
    self.op(pickle.NONE)  # Field names.
    self.op(pickle.NONE)  # Fields.
    self.int(-1)  # Element size (-1: implied by the type).
    self.int(-1)  # Alignment (-1: implied).
    self.int(0)  # Flags.
    self.op(pickle.TUPLE)
    self.op(pickle.BUILD)  # dtype.__setstate__(state).

  def uint8_array(self, array):
    """A C-ordered uint8 ndarray as NumPy 1.x pickled it: ndarray.__reduce__()
    is (_reconstruct, (ndarray, (0,), 'b'), state), state = (1, shape, dtype,
    is_fortran, raw bytes)."""
    self.global_("numpy.core.multiarray", "_reconstruct")
    self.global_("numpy", "ndarray")
    self.int(0)
    self.op(pickle.TUPLE1)  # Shape (0,): an empty array to fill in.
    self.string("b")  # Placeholder dtype code.
    self.op(pickle.TUPLE3)
    self.op(pickle.REDUCE)  # _reconstruct(ndarray, (0,), 'b').
    self.op(pickle.MARK)
    self.int(1)  # Pickle version of the array state.
    for size in array.shape:
      self.int(size)
    self.op(pickle.TUPLE2)  # Shape (N, 3072).
    self.uint8_dtype()
    self.op(pickle.NEWFALSE)  # is_fortran=False: the bytes are in C order.
    # The raw N*3072 bytes, as one BINSTRING.
    self.string(np.ascontiguousarray(array).tobytes())
    self.op(pickle.TUPLE)
    self.op(pickle.BUILD)  # ndarray.__setstate__(state) fills the array.


def encode_batch(data, labels, batch_label="training batch 1 of 1",
                 filenames=None):
  """Returns the bytes of a batch file, as Python 2's cPickle wrote them.

  Args:
    data: uint8 (N, 3072), one channels-first image per row (see module doc).
    labels: N ints in 0..9.
    batch_label: e.g. 'training batch 1 of 5' or 'testing batch 1 of 1'.
    filenames: N names; default 'image_000000.png', ...

  Returns:
    bytes of a protocol-2 pickle of a dict with keys batch_label, labels, data,
    filenames, in the order the official files have them.
  """
  data = np.asarray(data)
  if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != ROW_LENGTH:
    raise ValueError(f"data must be uint8 (N, {ROW_LENGTH}), got "
                     f"{data.dtype} {data.shape}.")
  labels = [int(label) for label in labels]
  if filenames is None:
    filenames = [f"image_{index:06d}.png" for index in range(len(data))]
  if not len(labels) == len(filenames) == len(data):
    raise ValueError(f"Got {len(labels)} labels and {len(filenames)} filenames "
                     f"for {len(data)} images.")
  writer = _Py2PickleWriter()
  writer.op(pickle.EMPTY_DICT)
  writer.op(pickle.MARK)  # Key, value, key, value, ... then SETITEMS.
  writer.string("batch_label")
  writer.string(batch_label)
  writer.string("labels")
  writer.list(labels, writer.int)
  writer.string("data")
  writer.uint8_array(data)
  writer.string("filenames")
  writer.list(list(filenames), writer.string)
  writer.op(pickle.SETITEMS)  # Pop the pairs into the dict.
  return writer.getvalue()


def encode_meta(label_names=CLASS_NAMES,
                num_cases_per_batch=OFFICIAL_BATCH_SIZE):
  """Returns the bytes of `batches.meta`, keys as in the official file."""
  writer = _Py2PickleWriter()
  writer.op(pickle.EMPTY_DICT)
  writer.op(pickle.MARK)
  writer.string("num_cases_per_batch")
  writer.int(num_cases_per_batch)
  writer.string("label_names")
  writer.list(list(label_names), writer.string)
  writer.string("num_vis")
  writer.int(ROW_LENGTH)
  writer.op(pickle.SETITEMS)
  return writer.getvalue()


def write_batch(path, data, labels, batch_label="training batch 1 of 1",
                filenames=None):
  """Writes a batch file byte-compatible with the official ones.

  Args: as `encode_batch`, plus `path`, which is replaced atomically.
  """
  run_dir.write_atomically(
      path, encode_batch(data, labels, batch_label, filenames))


def write_meta(path, label_names=CLASS_NAMES,
               num_cases_per_batch=OFFICIAL_BATCH_SIZE):
  """Writes `batches.meta` with the given class names, atomically."""
  run_dir.write_atomically(path, encode_meta(label_names, num_cases_per_batch))
