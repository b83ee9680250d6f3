"""The run folder (`--model_dir`) apart from the checkpoints themselves.

A run folder holds:

    checkpoint, ckpt-<step>.index, ckpt-<step>.data-*   TF checkpoints (see
                                                        checkpoints.py)
    run_config.json   the settings that define the run, to refuse a restart
                      with different ones (see `check_identity`)
    metrics.jsonl     one JSON record per epoch (mean training loss,
                      images/sec) and one per test evaluation
    steps.log         with --step_log: one line per training step that ran
    .lock             held while a process trains in the folder

Public pieces:

    check_writable(model_dir)              before any work: can we write there?
    run_identity(config, dataset) -> dict  what must not change on a restart
    check_identity(model_dir, identity)    compare with run_config.json
    record_identity(model_dir, identity)   write run_config.json atomically
    has_checkpoints(model_dir)             is there anything to resume?
    RunLock(model_dir)                     one training process per folder
    read_metrics / append_metric / keep_metrics_up_to
    StepLog, read_step_log                 the per-step audit trail

Everything here is the standard library and numpy, no TensorFlow, so the
program can check the folder before it spends seconds importing TensorFlow.
Errors a user can cause raise `RunDirError`: one sentence saying what to do.
"""

import errno
import fcntl
import json
import math
import os
import re
import uuid
import zlib

import numpy as np

from tf_raw import config as config_lib

RUN_CONFIG_FILE = "run_config.json"
METRICS_FILE = "metrics.jsonl"
STEP_LOG_FILE = "steps.log"
LOCK_FILE = ".lock"
CHECKPOINT_STATE_FILE = "checkpoint"  # tf.train.CheckpointManager's index.
CHECKPOINT_PREFIX = config_lib.CHECKPOINT_PREFIX  # ckpt-<global step>.*

# The settings that decide which training steps a run takes. Changing one of
# them on a restart would silently make a different run, so it is refused.
# The others (epochs, eval_every, checkpoint_every_steps, model_dir, where the
# data comes from, ...) may change: e.g. --epochs=60 extends a finished run
# (except with --lr_schedule=cosine, whose rates depend on --epochs).
IDENTITY_FLAGS = ("dataset", "data_layout", "batch_size", "drop_remainder",
                  "shuffle", "seed", "learning_rate", "decay", "momentum",
                  "epsilon", "keep_prob_conv", "keep_prob_hidden",
                  "init_stddev", "ema_decay", "augment", "lr_schedule",
                  "precision")
# Identity flags added after run_config.json existed: their value in a run
# folder that predates them (what every run used then).
_IDENTITY_DEFAULTS = {"augment": "none", "lr_schedule": "constant",
                      "precision": "float32"}
_RUN_CONFIG_VERSION = 1


class RunDirError(Exception):
  """The run folder cannot be used; str(e) says why and what to do."""


def _reason(error):
  """'Permission denied' from an OSError, else the error's text."""
  return getattr(error, "strerror", None) or str(error) or type(error).__name__


# ---------------------------------------------------------------------------
# Writing files so that a reader never sees half of one.


def write_atomically(path, contents):
  """Replaces `path` with `contents` (str or bytes): all of it, or the old file.

  The contents go to a temporary file in the same folder, is flushed to disk
  (fsync), and is renamed over `path`; a rename within one filesystem is
  atomic, so a crash at any moment leaves the old file or the new one.

  Raises:
    OSError: the write failed; the old file is untouched and the temporary
      one removed.
  """
  # uuid rather than tempfile, whose files are private (0600): open() gives
  # the usual permissions.
  temp_path = f"{path}.{uuid.uuid4().hex}.tmp"
  binary = isinstance(contents, bytes)
  try:
    with open(temp_path, "xb" if binary else "x",
              encoding=None if binary else "utf-8") as f:
      f.write(contents)
      f.flush()
      os.fsync(f.fileno())
    os.replace(temp_path, path)
  except BaseException:
    if os.path.exists(temp_path):
      os.remove(temp_path)
    raise
  _fsync_folder(os.path.dirname(path) or ".")


def _fsync_folder(folder):
  """Makes a rename in `folder` durable (best effort: not every OS allows it)."""
  try:
    fd = os.open(folder, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(fd)
  except OSError:
    pass
  finally:
    os.close(fd)


# ---------------------------------------------------------------------------
# Is the folder usable?


def check_writable(model_dir):
  """Fails early, writing nothing, when `model_dir` could not be written.

  Run before loading data or importing TensorFlow, so a typo costs a second,
  not a download. The real first write (run_config.json) is checked again.

  Raises:
    RunDirError: model_dir is a file, sits below a file, or is not writable.
  """
  model_dir = os.path.abspath(os.path.expanduser(model_dir))
  existing = model_dir
  while not os.path.exists(existing):  # The nearest part that exists.
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    what = ("is a file" if existing == model_dir
            else f"cannot be created because {existing} is a file")
    raise RunDirError(f"--model_dir={model_dir} {what}; choose a folder.")
  if not os.access(existing, os.W_OK | os.X_OK):
    where = ("" if existing == model_dir
             else f" (it would be created in {existing})")
    raise RunDirError(
        f"--model_dir={model_dir} is not writable{where}; choose a folder you "
        "can write to, or fix its permissions.")


def has_checkpoints(model_dir):
  """True if model_dir holds a checkpoint index or any ckpt-* file."""
  if not os.path.isdir(model_dir):
    return False
  return any(name == CHECKPOINT_STATE_FILE
             or name.startswith(CHECKPOINT_PREFIX + "-")
             for name in os.listdir(model_dir))


# ---------------------------------------------------------------------------
# run_config.json: the identity of a run.


def run_identity(config, dataset):
  """What a restart must agree on: the identity flags and the training data.

  Args:
    config: a `config.TrainConfig`.
    dataset: the `data.Dataset` being trained on.

  Returns:
    A JSON-able dict: each flag in IDENTITY_FLAGS, plus num_train_images and
    train_data_crc32 (a CRC-32 of the training images and labels, which tells
    apart two datasets of the same size, e.g. another --data_dir).
  """
  identity = {name: getattr(config, name) for name in IDENTITY_FLAGS}
  if config.lr_schedule != "constant":
    # The schedule's length is epochs * steps per epoch: another --epochs
    # would change the rate of the steps still to come.
    identity["epochs"] = config.epochs
  images = np.ascontiguousarray(dataset.train_images)
  labels = np.ascontiguousarray(dataset.train_labels)
  identity["num_train_images"] = int(len(labels))
  identity["train_data_crc32"] = f"{zlib.crc32(labels, zlib.crc32(images)):08x}"
  return identity


def _read_run_config(model_dir):
  path = os.path.join(model_dir, RUN_CONFIG_FILE)
  try:
    with open(path, encoding="utf-8") as f:
      saved = json.load(f)
    identity = saved["identity"]
    if not isinstance(identity, dict):
      raise TypeError(f"its identity is {type(identity).__name__}, not an "
                      "object")
    return identity
  except FileNotFoundError:
    return None
  except (OSError, ValueError, KeyError, TypeError, RecursionError) as error:
    detail = (_reason(error) if isinstance(error, OSError)
              else one_line(error, 120))
    raise RunDirError(
        f"{path} cannot be read ({type(error).__name__}: {detail}); it records "
        "the settings of the run in that folder, so restore it, or delete it "
        "if you are sure this command uses the same settings.") from error


def one_line(error, limit=200):
  """An exception's text as one short line, for user messages.

  TensorFlow's op errors are wrapped as "{{function_node ...}} <text>
  [Op:SaveV2]"; only <text> is kept. (Also used by checkpoints.py and by
  the programs' error boundary in flags/cli.py.)
  """
  text = getattr(error, "message", None) or str(error)
  text = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", text.strip())
  text = re.sub(r"\s*\[Op:\w+\]$", "", text)
  text = text.splitlines()[0] if text else type(error).__name__
  return text if len(text) <= limit else text[:limit - 3] + "..."


def _write_advice(error):
  """What to do after a failed write, from its errno."""
  if getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
    return "free some disk space"
  if getattr(error, "errno", None) in (errno.EACCES, errno.EPERM, errno.EROFS):
    return "make it writable"
  return "check the file (is it a folder?)"


def recorded_setting(model_dir, name):
  """The value of identity flag `name` recorded in model_dir/run_config.json.

  Returns None when the folder has no run_config.json; a flag added after the
  folder was written reads as its value then (e.g. precision: "float32").

  Raises:
    RunDirError: run_config.json cannot be read.
  """
  saved = _read_run_config(model_dir)
  if saved is None:
    return None
  return saved.get(name, _IDENTITY_DEFAULTS.get(name))


def _describe_change(name, saved, current):
  if name == "num_train_images":
    return f"{saved} training images there, {current} now"
  if name == "train_data_crc32":
    return (f"training data with checksum {saved} there, {current} now "
            "(different images or labels)")
  return f"--{name}={saved} there, {current} now"


def check_identity(model_dir, identity):
  """Refuses to continue a run with settings that would change its steps.

  Only matters when model_dir holds checkpoints; a folder without any starts
  a new run (see `record_identity`).

  Args:
    model_dir: the run folder.
    identity: `run_identity(config, dataset)` of this command.

  Raises:
    RunDirError: run_config.json differs; the message names every difference.
  """
  if not has_checkpoints(model_dir):
    return
  saved = _read_run_config(model_dir)
  if saved is None:
    return  # Written by a version without run_config.json: nothing to check.
  saved = {name: saved.get(name, _IDENTITY_DEFAULTS.get(name))
           for name in identity}
  changes = [_describe_change(name, saved[name], value)
             for name, value in identity.items() if saved[name] != value]
  if changes:
    raise RunDirError(
        f"--model_dir={model_dir} holds a run made with other settings ("
        f"{'; '.join(changes)}), so continuing it would not be the same run; "
        "rerun with the original values, or use a new --model_dir.")


def record_identity(model_dir, identity):
  """Checks `identity` against model_dir, then writes run_config.json.

  This is a run's first write, so an unwritable folder fails here, before
  any training.

  Raises:
    RunDirError: settings differ (see `check_identity`), or the folder cannot
      be written.
  """
  check_identity(model_dir, identity)
  path = os.path.join(model_dir, RUN_CONFIG_FILE)
  text = json.dumps({"version": _RUN_CONFIG_VERSION, "identity": identity},
                    indent=2, sort_keys=True) + "\n"
  try:
    os.makedirs(model_dir, exist_ok=True)
    if os.path.exists(path):
      with open(path, encoding="utf-8") as f:
        if f.read() == text:
          return  # Nothing changed: leave the file (and its mtime) alone.
    write_atomically(path, text)
  except OSError as error:
    raise RunDirError(
        f"Cannot write {path} ({_reason(error)}); choose a writable "
        "--model_dir or free some disk space.") from error


# ---------------------------------------------------------------------------
# One training process per folder.


class RunLock:
  """An exclusive lock on model_dir/.lock, released when the process ends.

  Two processes training into one folder would interleave their checkpoints;
  the second is refused. `fcntl.flock` locks belong to the open file, so the
  kernel drops them when the process dies, even by kill -9: no stale locks.
  """

  def __init__(self, model_dir):
    self.path = os.path.join(model_dir, LOCK_FILE)
    self._fd = None

  def __enter__(self):
    try:
      os.makedirs(os.path.dirname(self.path), exist_ok=True)
      self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
      raise RunDirError(
          f"Cannot write {self.path} ({_reason(error)}); choose a writable "
          "--model_dir.") from error
    try:
      fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
      os.close(self._fd)
      self._fd = None
      if error.errno not in (errno.EAGAIN, errno.EACCES):
        raise RunDirError(f"Cannot lock {self.path} ({_reason(error)}).") from error
      raise RunDirError(
          f"Another process is training in --model_dir="
          f"{os.path.dirname(self.path)}; wait for it to finish (or stop it), "
          "or use another --model_dir.") from error
    return self

  def __exit__(self, *exc_info):
    if self._fd is not None:
      os.close(self._fd)  # Closing the file releases the lock.
      self._fd = None


# ---------------------------------------------------------------------------
# metrics.jsonl: one record per epoch and per evaluation, none lost or repeated.


def read_metrics(model_dir, kind="evaluation", file_name=METRICS_FILE):
  """The records of one kind in model_dir's metrics file, oldest first.

  Args:
    model_dir: the run folder.
    kind: "evaluation" (test accuracy; records written before records had
      a kind are evaluations), "epoch" (mean training loss, images/sec), or
      None for every record.
    file_name: metrics.jsonl, or metrics_v1.jsonl of `--api=v1`.

  A last line without its newline (a process killed in the middle of writing
  it) is ignored: `append_metric` writes each record whole, with its newline.
  """
  records = []
  for line in _read_metrics_lines(model_dir, file_name)[:-1]:  # After last \n.
    record = _parse_record(line)
    if record is not None and (
        kind is None or record.get("kind", "evaluation") == kind):
      records.append(record)
  return records


def _read_metrics_lines(model_dir, file_name=METRICS_FILE):
  """The metrics file as a list of byte lines ([b""] for no file)."""
  path = os.path.join(model_dir, file_name)
  try:
    with open(path, "rb") as f:
      return f.read().split(b"\n")
  except FileNotFoundError:
    return [b""]
  except OSError as error:
    raise RunDirError(
        f"Cannot read {path} ({_reason(error)}); it must be the run's text "
        "file of evaluation records: restore it, or move it away to start "
        "the records afresh.") from error


def _parse_record(line):
  """A record: a JSON object whose "step" is an int; anything else is None.

  A torn, hand-edited or foreign line ([], null, "text", {"step": "8"},
  bytes that are not UTF-8) is no record, as a torn last line is not.
  """
  try:
    record = json.loads(line.decode("utf-8"))
  except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError.
    return None
  if not isinstance(record, dict):
    return None
  step = record.get("step")
  if type(step) is not int:  # pylint: disable=unidiomatic-typecheck
    return None  # bool is an int subclass; "8" and 8.0 are not steps.
  return record


def _json_safe(value):
  """NaN and infinities as null (JSON has no NaN), in nested dicts/lists."""
  if isinstance(value, float) and not math.isfinite(value):
    return None
  if isinstance(value, dict):
    return {key: _json_safe(item) for key, item in value.items()}
  if isinstance(value, (list, tuple)):
    return [_json_safe(item) for item in value]
  return value


def append_metric(model_dir, record, file_name=METRICS_FILE):
  """Appends one record to model_dir/file_name as a single write, then fsyncs.

  (`--api=v1` passes its own file name, metrics_v1.jsonl.)
  """
  path = os.path.join(model_dir, file_name)
  # A class without test images has accuracy NaN: written as null.
  line = (json.dumps(_json_safe(record), allow_nan=False) + "\n").encode(
      "utf-8")
  try:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
      os.write(fd, line)
      os.fsync(fd)
    finally:
      os.close(fd)
  except OSError as error:
    raise RunDirError(f"Cannot append to {path} ({_reason(error)}); "
                      f"{_write_advice(error)}, then run the same command "
                      "again.") from error


def keep_metrics_up_to(model_dir, step):
  """Drops records of steps after `step` (work a restart will redo).

  Such records exist only when training restarts from an older checkpoint
  than the newest one (the newest was damaged). Rewrites the file atomically.

  Returns:
    How many records were dropped.
  """
  path = os.path.join(model_dir, METRICS_FILE)
  if not os.path.lexists(path):
    return 0
  lines = _read_metrics_lines(model_dir)
  records = read_metrics(model_dir, kind=None)
  kept = [record for record in records if record["step"] <= step]
  # A torn last line must go too, or the next append would extend it; so
  # must lines that are no record (they would break other readers).
  torn = lines[-1] != b""
  unparsable = len(lines) - 1 - len(records)
  if len(kept) == len(records) and not torn and not unparsable:
    return 0
  try:
    write_atomically(path, "".join(
        json.dumps(_json_safe(r), allow_nan=False) + "\n" for r in kept))
  except OSError as error:
    raise RunDirError(f"Cannot rewrite {path} ({_reason(error)}); "
                      f"{_write_advice(error)}, then run the same command "
                      "again.") from error
  return len(records) - len(kept)


# ---------------------------------------------------------------------------
# steps.log: which steps ran, to prove none was lost or repeated.


def batch_fingerprint(image_indices):
  """CRC-32 of a batch's image indices: equal fingerprints, equal batches."""
  return zlib.crc32(np.ascontiguousarray(image_indices, np.int64))


class StepLog:
  """Appends `step epoch batch fingerprint` for every step that ran.

  Each process adds a `# session pid=... start_step=...` line first, so the
  log shows where each restart picked up. A line is written after its step
  finished, from numbers the host already has (no device sync).
  """

  def __init__(self, model_dir, start_step):
    self.path = os.path.join(model_dir, STEP_LOG_FILE)
    try:
      self._file = open(self.path, "a", encoding="utf-8", buffering=1)
      self._file.write(f"# session pid={os.getpid()} start_step={start_step}\n")
    except OSError as error:
      raise RunDirError(f"Cannot write {self.path} ({_reason(error)}); choose "
                        "a writable --model_dir.") from error

  def record(self, step, epoch, batch, image_indices):
    """Step `step` (1-based: the global step after it) ran on this batch."""
    self._file.write(
        f"{step} {epoch} {batch} {batch_fingerprint(image_indices):08x}\n")

  def close(self):
    self._file.close()


def read_step_log(path):
  """Parses a steps.log.

  Returns:
    A list of sessions, one per process: each a list of
    (step, epoch, batch, fingerprint) tuples, in the order they ran.
  """
  sessions = []
  with open(path, encoding="utf-8") as f:
    for line in f:
      if line.startswith("#"):
        sessions.append([])
      elif line.endswith("\n"):  # A torn last line (kill -9) is no record.
        step, epoch, batch, fingerprint = line.split()
        sessions[-1].append((int(step), int(epoch), int(batch), fingerprint))
  return sessions
