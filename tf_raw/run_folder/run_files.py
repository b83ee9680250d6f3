"""The small text files a run leaves in its model_dir, next to the checkpoints.

    model_dir/flags.txt        the run's effective flags, one per line, so
                               `python -m tf_raw.train --flagfile=model_dir/flags.txt`
                               repeats it
    model_dir/class_names.txt  one class name per line (label i on line i+1),
                               read by `tf_raw.tools.export` and `tf_raw.tools.predict`

`WriteRunFiles` writes both when training starts, as a hook of `loop.Trainer`: inside
the folder's lock, after the checks that the folder holds this run. Both are
written atomically (`run_dir.write_atomically`: a temporary file,
then a rename): a reader sees the old file or the new one, never half of one.
"""

import os

from tf_raw.run_folder import run_dir

FLAGS_FILE = "flags.txt"
CLASS_NAMES_FILE = "class_names.txt"


def write_flags(model_dir, flag_lines):
  """Writes flags.txt: `flag_lines` are "--name=value" strings."""
  run_dir.write_atomically(os.path.join(model_dir, FLAGS_FILE),
                           "".join(f"{line}\n" for line in flag_lines))


def write_class_names(model_dir, class_names):
  run_dir.write_atomically(os.path.join(model_dir, CLASS_NAMES_FILE),
                           "".join(f"{name}\n" for name in class_names))


def read_class_names(model_dir):
  """The class names saved with a run, or None if the file is not there."""
  path = os.path.join(model_dir, CLASS_NAMES_FILE)
  if not os.path.isfile(path):
    return None
  with open(path, encoding="utf-8") as f:
    return tuple(line.rstrip("\n") for line in f if line.strip())


class WriteRunFiles:
  """Writes flags.txt and class_names.txt when a run begins."""

  def __init__(self, flag_lines, class_names):
    self.flag_lines = flag_lines
    self.class_names = class_names

  def begin(self, trainer, step):
    del step
    self.begin_in(trainer.config.model_dir)

  def begin_in(self, model_dir):
    """Writes both files into model_dir (for loops without hooks: --api=v1).

    Raises:
      run_dir.RunDirError: a write failed (disk full, read-only, ...).
    """
    try:
      os.makedirs(model_dir, exist_ok=True)
      write_flags(model_dir, self.flag_lines)
      write_class_names(model_dir, self.class_names)
    except OSError as error:
      where = error.filename or model_dir
      raise run_dir.RunDirError(
          f"Cannot write {where} ({error.strerror or error}); free some disk "
          "space or make --model_dir writable, then run the same command "
          "again.") from error
