"""Checkpoints you can trust: atomic saves, the last K kept, damaged ones skipped.

`CheckpointStore(checkpoint, model_dir, max_to_keep)` wraps TensorFlow's own
`tf.train.CheckpointManager`, which already writes safely:

1. `tf.train.Checkpoint` writes the tensors into `ckpt-<step>_temp/`, then
   renames them to `ckpt-<step>.index` and `ckpt-<step>.data-00000-of-00001`;
2. only then does the manager rewrite the `checkpoint` file (the pointer to
   the newest one), itself via a temporary file and a rename;
3. and only then does it delete checkpoints older than the newest K.

So the newest checkpoint that `checkpoint` names is always complete, and a
crash (even kill -9) mid-save leaves the previous one in charge. What this
module adds:

* `restore()` tries checkpoints newest first: one whose files are damaged
  (truncated, bit-flipped: every tensor has a CRC-32C, checked on read) is
  reported and skipped, falling back to the previous one; one written by a
  different model is an error, since an older one would not fit either.
* `save(step)` turns a failed write (disk full, read-only folder, ...) into
  one sentence naming the checkpoint that is still intact, and removes the
  failed write's leftovers.
"""

import glob
import os
import re
import shutil

import tensorflow as tf

from tf_raw.run_folder import run_dir


class CheckpointError(run_dir.RunDirError):
  """A checkpoint cannot be used or written; str(e) says what to do."""


def checkpoint_step(prefix):
  """The step number in '.../ckpt-<step>', or -1 if there is none."""
  match = re.search(r"-(\d+)$", prefix)
  return int(match.group(1)) if match else -1


def _os_reason(error):
  """'No space left on device' from a failed write, whichever layer raised.

  TensorFlow ends a file error with "<path>; <strerror>".
  """
  if isinstance(error, OSError) and error.strerror:
    return error.strerror
  return run_dir.one_line(error).rsplit("; ", 1)[-1]


def _different_model_detail(error):
  """What a restore error says about a model mismatch, or None if it is not one.

  TensorFlow reports a shape mismatch as a ValueError ("Received incompatible
  tensor with shape ...") and a checkpoint of other objects as an
  AssertionError from `assert_existing_objects_matched`.
  """
  text = str(error)
  shapes = re.search(r"incompatible tensor with shape (\S+(?: \S+)*?\)) when "
                     r"attempting to restore variable with shape "
                     r"(\S+(?: \S+)*?\)) and name (\S+?)(?::\d+)?\.", text)
  if shapes:
    saved, ours, name = shapes.groups()
    return f"{name} has shape {saved} there but {ours} here"
  if isinstance(error, ValueError) and "incompatible" in text:
    return run_dir.one_line(error)
  if isinstance(error, AssertionError):
    unmatched = re.search(r"Found (\d+) Python objects that were not bound",
                          text)
    count = unmatched.group(1) if unmatched else "some"
    return f"{count} of this model's variables are missing from it"
  return None


def find_checkpoints(model_dir, indexed=()):
  """Checkpoint prefixes in model_dir, newest (highest step) first.

  Args:
    model_dir: the run folder.
    indexed: prefixes that the `checkpoint` index file names (they count even
      if their files are gone: restoring them then fails and is reported).

  The files on disk count too (found with the folder's name glob-escaped),
  so a lost or garbled `checkpoint` file does not hide the checkpoints.
  """
  prefixes = set(indexed)
  pattern = os.path.join(glob.escape(model_dir),
                         run_dir.CHECKPOINT_PREFIX + "-*.index")
  prefixes.update(path[:-len(".index")] for path in glob.glob(pattern))
  unique = {os.path.normpath(prefix) for prefix in prefixes}
  return sorted(unique, key=checkpoint_step, reverse=True)


def indexed_checkpoint(model_dir):
  """The prefix the `checkpoint` index file names, or None (also if garbled)."""
  try:
    return tf.train.latest_checkpoint(model_dir)
  except Exception:  # pylint: disable=broad-except
    return None  # A garbled index: the files on disk still count.


def restore_newest(model_dir, prefixes, restore, out=print, advice=""):
  """The one restore path of every program: newest usable checkpoint first.

  Args:
    model_dir: the run folder (for messages).
    prefixes: candidates, newest first (`find_checkpoints`).
    restore: restore(prefix) -> result; raises `CheckpointError` when the
      checkpoint is not this program's (fatal: an older one would not fit
      either), anything else when its files are damaged (truncated,
      bit-flipped, missing: DataLossError, NotFoundError, IndexError, ...).
    out: where each skipped checkpoint is reported.
    advice: what to do when every checkpoint is damaged.

  Returns:
    restore()'s result for the newest usable prefix, or None if there is none.

  Raises:
    CheckpointError: a checkpoint of another model, or every one damaged.
  """
  damaged = []
  for prefix in prefixes:
    try:
      return restore(prefix)
    except CheckpointError:
      raise
    except Exception as error:  # pylint: disable=broad-except
      reason = f"{type(error).__name__}: {run_dir.one_line(error, 120)}"
      damaged.append(f"{os.path.basename(prefix)} ({reason})")
      out(f"Checkpoint {prefix} is damaged ({reason}); falling back to the "
          "one before it.")
  if damaged:
    raise CheckpointError(
        f"Every checkpoint in {model_dir} is damaged: "
        f"{'; '.join(damaged)}; {advice or 'restore them from a backup'}.")
  return None


class CheckpointStore:
  """Saves and restores one `tf.train.Checkpoint` in model_dir.

  Attributes:
    manager: the `tf.train.CheckpointManager` (numbering, rotation, index).
    last_good: prefix of the newest checkpoint known to be complete (restored
      or just written), or None.
  """

  def __init__(self, checkpoint, model_dir, max_to_keep):
    """Creates the manager; reads the folder, writes nothing.

    Args:
      checkpoint: the `tf.train.Checkpoint` of everything a restart needs.
      model_dir: the run folder (need not exist yet).
      max_to_keep: how many recent checkpoints to keep (K).
    """
    # TensorFlow globs checkpoint paths (and writes under the same ones), so
    # no escaping can make a folder with glob characters work; the flags
    # refuse it too (flags/common_flags.register_checkpoint_folder).
    if any(character in os.path.abspath(model_dir) for character in "*?["):
      raise CheckpointError(
          f"{model_dir} has *, ? or [ in its path, which TensorFlow reads as a "
          "glob pattern, so its checkpoints could never be found again; "
          "choose another folder.")
    self.checkpoint = checkpoint
    self.model_dir = model_dir
    self.manager = tf.train.CheckpointManager(
        checkpoint, model_dir, max_to_keep=max_to_keep,
        checkpoint_name=run_dir.CHECKPOINT_PREFIX)
    self.last_good = None
    # `save_counter` is created lazily at the first save; create it now so a
    # restore assigns it at once instead of deferring it (TensorFlow warns
    # about deferred values that are never used).
    _ = checkpoint.save_counter

  def candidates(self):
    """Checkpoint prefixes in model_dir, newest (highest step) first.

    Both the manager's index and the files on disk count, so a lost or
    unreadable `checkpoint` file does not hide the checkpoints themselves.
    """
    indexed = list(self.manager.checkpoints)
    if self.manager.latest_checkpoint:
      indexed.append(self.manager.latest_checkpoint)
    return find_checkpoints(self.model_dir, indexed)

  def restore(self, out=print):
    """Restores the newest usable checkpoint, if any.

    Args:
      out: where to report skipped (damaged) checkpoints.

    Returns:
      The restored prefix, or None if model_dir holds no checkpoint.

    Raises:
      CheckpointError: a checkpoint was written by a different model, or
        every checkpoint there is damaged.
    """
    self._remove_leftovers()

    def restore(prefix):
      status = None
      try:
        status = self.checkpoint.restore(prefix)
        status.assert_existing_objects_matched()
      except Exception as error:  # pylint: disable=broad-except
        if status is not None:
          status.expect_partial()  # No warning about the unused values.
        detail = _different_model_detail(error)
        if detail is not None:
          raise CheckpointError(
              f"Checkpoint {prefix} was written by a different model or "
              f"program ({detail}), so this run cannot continue from it; use a "
              f"new --model_dir, or delete {self.model_dir} to start afresh."
              ) from error
        raise
      return prefix

    restored = restore_newest(
        self.model_dir, self.candidates(), restore, out,
        advice="restore them from a backup, or delete the folder to start "
        "afresh")
    if restored is not None:
      self.last_good = restored
    return restored

  def save(self, step):
    """Writes ckpt-<step>, then drops all but the newest K.

    Returns:
      The new checkpoint's prefix.

    Raises:
      CheckpointError: the write failed; the previous checkpoint is intact and
        the failed write's files are removed.
    """
    try:
      path = self.manager.save(checkpoint_number=step)
    except (tf.errors.OpError, OSError) as error:
      prefix = os.path.join(self.model_dir,
                            f"{run_dir.CHECKPOINT_PREFIX}-{step}")
      self._remove_files_of(prefix)
      kept = (f"the previous checkpoint, {self.last_good}, is intact"
              if self.last_good else "no earlier checkpoint exists")
      raise CheckpointError(
          f"Could not write checkpoint {prefix} ({_os_reason(error)}); "
          f"{kept}; free some disk space or make {self.model_dir} writable, "
          "then run the same command again.") from error
    self.last_good = path
    return path

  def _remove_files_of(self, prefix):
    """Deletes every file of one (failed) checkpoint, and its temp folder."""
    shutil.rmtree(prefix + "_temp", ignore_errors=True)
    for path in glob.glob(glob.escape(prefix) + ".*"):
      try:
        os.remove(path)
      except OSError:
        pass

  def _remove_leftovers(self):
    """Deletes ckpt-*_temp folders of saves cut short (e.g. by kill -9)."""
    pattern = os.path.join(glob.escape(self.model_dir),
                           run_dir.CHECKPOINT_PREFIX + "-*_temp")
    for folder in glob.glob(pattern):
      shutil.rmtree(folder, ignore_errors=True)
