"""The small text files a run leaves in its model_dir, next to the checkpoints.

    model_dir/flags.txt        the run's effective flags, one per line, so
                               `python -m tf_raw.train --flagfile=model_dir/flags.txt`
                               repeats it
    model_dir/class_names.txt  one class name per line (label i on line i+1),
                               read by `tf_raw.export` and `tf_raw.predict`

Both are written atomically (a temporary file, then a rename): a reader sees
the old file or the new one, never half of one.
"""

import os
import tempfile

FLAGS_FILE = "flags.txt"
CLASS_NAMES_FILE = "class_names.txt"


def write_atomically(path, contents):
  """Writes str or bytes to `path` through a temporary file and a rename."""
  folder = os.path.dirname(os.path.abspath(path))
  handle, temporary = tempfile.mkstemp(prefix=".writing-", dir=folder)
  try:
    with os.fdopen(handle, "wb" if isinstance(contents, bytes) else "w") as f:
      f.write(contents)
    os.chmod(temporary, 0o644)  # mkstemp makes it private (0600).
    os.replace(temporary, path)
  except BaseException:
    os.remove(temporary)
    raise


def write_flags(model_dir, flag_lines):
  """Writes flags.txt: `flag_lines` are "--name=value" strings."""
  write_atomically(os.path.join(model_dir, FLAGS_FILE),
                        "".join(f"{line}\n" for line in flag_lines))


def write_class_names(model_dir, class_names):
  write_atomically(os.path.join(model_dir, CLASS_NAMES_FILE),
                        "".join(f"{name}\n" for name in class_names))


def read_class_names(model_dir):
  """The class names saved with a run, or None if the file is not there."""
  path = os.path.join(model_dir, CLASS_NAMES_FILE)
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    return tuple(line.rstrip("\n") for line in f if line.strip())
