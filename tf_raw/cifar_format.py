"""The official CIFAR-10 "python version" batch files, read safely and written.

`cifar-10-python.tar.gz` unpacks to

    cifar-10-batches-py/data_batch_1 ... data_batch_5  10,000 train images each
    cifar-10-batches-py/test_batch                     10,000 test images
    cifar-10-batches-py/batches.meta                   the 10 class names
    cifar-10-batches-py/readme.html

Each batch is a dict pickled by Python 2's cPickle, protocol 2:

    {'batch_label': 'training batch 1 of 5',
     'labels': [6, 9, 9, 4, ...],        # N Python ints in 0..9
     'data': <uint8 ndarray (N, 3072)>,  # one image per row
     'filenames': ['leptodactylus_pentadactylus_s_000004.png', ...]}

A row is channels-first: three 32x32 planes, red then green then blue, each
row-major, so `row[c * 1024 + y * 32 + x]` is channel c of pixel (y, x). Turning
rows into NHWC images therefore needs a transpose, not just a reshape (see
`tf_raw.data.chw_rows_to_images`).

Public functions:

    read_batch(path) -> (data, labels)    restricted unpickler: runs no code
    read_meta(path) -> class names
    encode_batch / write_batch            the Python 2 bytes, opcode by opcode
    encode_meta / write_meta

Why a restricted unpickler: a pickle can import and call any function (GLOBAL
then REDUCE), so a tampered "batch" could run `os.system`. A real CIFAR-10 batch
needs exactly three globals; anything else is refused before it is imported.

Errors in a file raise `FormatError`, whose message is one sentence naming the
file and saying what to do. This module imports only numpy and the standard
library.
"""

import io
import pickle
import struct

import numpy as np

from tf_raw import run_dir

IMAGE_SIZE = 32  # Pixels per side.
NUM_CHANNELS = 3  # Red, green, blue planes, in that order.
ROW_LENGTH = NUM_CHANNELS * IMAGE_SIZE * IMAGE_SIZE  # 3072 uint8s per image.
NUM_CLASSES = 10
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
               "horse", "ship", "truck")
OFFICIAL_BATCH_SIZE = 10000  # Rows per official batch; other sizes load too.

# The only globals a CIFAR-10 batch pickle refers to. NumPy 2 renamed
# `numpy.core` to `numpy._core`, and pickles written by NumPy 2 name the new
# module, so both spellings of `_reconstruct` are allowed.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}
# The function NumPy's own array pickles call, fetched without importing a
# private module by name (so neither `numpy.core` nor `numpy._core` matters).
_RECONSTRUCT = np.ndarray((0,), np.uint8).__reduce__()[0]

# cPickle (Python 2) emits APPENDS/SETITEMS in batches of at most this many.
_PICKLE_BATCH_SIZE = 1000


class FormatError(ValueError):
  """A file is not a valid CIFAR-10 batch; str(e) says which and what to do."""


# ---------------------------------------------------------------------------
# Reading.


class _CifarUnpickler(pickle.Unpickler):
  """An unpickler that builds arrays and plain containers, and nothing else."""

  def __init__(self, file, path):
    # encoding="bytes": Python 2 `str` objects (keys, labels' names, the array's
    # raw bytes) come back as `bytes`, exactly as they were stored.
    super().__init__(file, encoding="bytes")
    self._path = path

  def find_class(self, module, name):
    # Called for every GLOBAL/STACK_GLOBAL/INST/OBJ before anything is imported.
    if (module, name) not in _ALLOWED_GLOBALS:
      raise FormatError(
          f"{self._path} is not a CIFAR-10 batch and may be malicious (its "
          f"pickle asks to call {module}.{name}), so delete it and get "
          "CIFAR-10 from the official archive again.")
    return {"_reconstruct": _RECONSTRUCT, "ndarray": np.ndarray,
            "dtype": np.dtype}[name]

  def persistent_load(self, pid):
    raise FormatError(f"{self._path} is not a CIFAR-10 batch (it uses "
                      "persistent ids), so delete it and extract CIFAR-10 "
                      "again.")


def _unpickle(path):
  """Loads a pickle through `_CifarUnpickler`; any failure is a FormatError."""
  try:
    with open(path, "rb") as f:
      raw = f.read()
  except OSError as err:
    raise FormatError(f"Could not read {path} ({err.strerror or err}); check "
                      "that the file exists and is readable.") from err
  try:
    return _CifarUnpickler(io.BytesIO(raw), path).load()
  except FormatError:
    raise
  except Exception as err:  # pylint: disable=broad-except
    # A truncated or garbled pickle can fail in many ways (EOFError,
    # UnpicklingError, ValueError, TypeError, struct.error, ...): all mean
    # "this file is damaged".
    raise FormatError(
        f"{path} is not a readable CIFAR-10 batch (truncated or corrupt: "
        f"{type(err).__name__}: {err}), so delete it and extract or download "
        "CIFAR-10 again.") from err


def read_batch(path, num_classes=NUM_CLASSES):
  """Reads one `data_batch_*` or `test_batch` file and checks it.

  Args:
    path: the batch file.
    num_classes: labels must lie in [0, num_classes).

  Returns:
    (data, labels): data is uint8 (N, 3072), one channels-first image per row;
    labels is int32 (N,).

  Raises:
    FormatError: the file is missing, damaged, not a CIFAR-10 batch, or holds
      wrongly shaped data or out-of-range labels.
  """
  batch = _unpickle(path)
  if not (isinstance(batch, dict) and b"data" in batch and b"labels" in batch):
    raise FormatError(
        f"{path} is not a CIFAR-10 batch (expected a dict with b'data' and "
        "b'labels'), so delete it and extract or download CIFAR-10 again.")
  data, labels = batch[b"data"], batch[b"labels"]
  if (not isinstance(data, np.ndarray) or data.dtype != np.uint8
      or data.ndim != 2 or data.shape[1] != ROW_LENGTH or data.shape[0] == 0):
    shape = getattr(data, "shape", None)
    dtype = getattr(data, "dtype", type(data).__name__)
    raise FormatError(
        f"{path} holds data of shape {shape} and type {dtype}, but a CIFAR-10 "
        f"batch holds uint8 rows of {ROW_LENGTH} values (N, {ROW_LENGTH}), so "
        "rebuild it with tf_raw.cifar_format.write_batch.")
  labels = np.asarray(labels)
  if (labels.ndim != 1 or labels.dtype.kind not in "iu"
      or len(labels) != len(data)):
    raise FormatError(
        f"{path} has {len(data)} images but its labels are not {len(data)} "
        f"integers (got shape {labels.shape}, type {labels.dtype}), so rebuild "
        "it with tf_raw.cifar_format.write_batch.")
  out_of_range = np.flatnonzero((labels < 0) | (labels >= num_classes))
  if out_of_range.size:
    index = int(out_of_range[0])
    raise FormatError(
        f"{path} has label {labels[index]} at index {index}, outside 0.."
        f"{num_classes - 1}, so the file is corrupt: rebuild it or extract "
        "CIFAR-10 again.")
  return data, labels.astype(np.int32)


def read_meta(path):
  """Reads `batches.meta` and returns its class names.

  Args:
    path: the `batches.meta` file.

  Returns:
    A tuple of str, e.g. ('airplane', 'automobile', ..., 'truck').

  Raises:
    FormatError: the file is missing, damaged or has no list of names.
  """
  meta = _unpickle(path)
  names = meta.get(b"label_names") if isinstance(meta, dict) else None
  if (not isinstance(names, list) or not names
      or not all(isinstance(name, bytes) for name in names)):
    raise FormatError(
        f"{path} is not a CIFAR-10 batches.meta file (expected b'label_names', "
        "a list of names), so rebuild it with tf_raw.cifar_format.write_meta.")
  return tuple(name.decode("utf-8") for name in names)


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
