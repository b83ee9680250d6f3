"""What every `python -m tf_raw...` program shares: flags, user errors, set-up.

A user mistake gets one sentence on stderr and a non-zero exit, never a
traceback: exit status 2 for a bad flag (as `absl` and `argparse` do for usage
errors), 1 for a problem found while running (data, checkpoint, divergence).
"""

import contextlib
import os
import re
import sys

from absl import flags

PROGRAM = "tf_raw"


def _program_name(argv):
  """'python -m tf_raw.tools.export' for argv[0] '.../tf_raw/tools/export.py'."""
  parts = (argv[0] if argv else PROGRAM).removesuffix(".py").split(os.sep)
  if PROGRAM in parts:
    parts = parts[len(parts) - parts[::-1].index(PROGRAM) - 1:]
  else:
    parts = [PROGRAM, parts[-1]]
  if parts[-1] == "__main__":
    parts = parts[:-1]
  return "python -m " + ".".join(parts)


def set_tensorflow_defaults():
  """Sets TensorFlow's environment defaults; call before importing TensorFlow.

  Programs call this first thing in `main` (library modules change nothing at
  import). An explicit value in the environment wins.

  * TF_ENABLE_ONEDNN_OPTS=1: unset, TensorFlow turns its oneDNN kernels on
    or off depending on the CPU's features (on the AVX-512 AMD EPYC we
    measure on it is on by default; on CPUs without such features it may be
    off). It is about 1.5x faster for this network there (BUILD.md, benchmarks:
    tf_raw 1,061 images/sec on, 727 off), so it is asked for explicitly,
    whatever the CPU.
  * TF_CPP_MIN_LOG_LEVEL=2: hide TensorFlow's C++ info and warning chatter.
  """
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_flags_or_exit(argv):
  """absl `flags_parser` for `app.run`: a bad flag is one line and exit 2."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as error:
    print(f"{_program_name(argv)}: error: {_sentence(error)} "
          "See --helpfull for every flag.", file=sys.stderr)
    sys.exit(2)


def _sentence(error):
  """absl's message as a sentence, its two rough edges smoothed."""
  text = str(error).strip()
  # "('Non-boolean argument to boolean flag', 'maybe')" for --shuffle=maybe.
  text = re.sub(r"\('Non-boolean argument to boolean flag', '(.*)'\)",
                r"'\1' is not true or false", text)
  text = text.replace(" ?", "?")  # "Did you mean: learning_rate ?"
  return text if text.endswith((".", "?")) else text + "."


def reject_extra_arguments(argv):
  """Exits 2 when positional arguments were given (all settings are flags)."""
  if len(argv) > 1:
    print(f"{_program_name(argv)}: error: unexpected argument(s) "
          f"{' '.join(argv[1:])!r}; every setting is a --flag=value "
          "(see --helpfull).", file=sys.stderr)
    sys.exit(2)


def usage_error(argv, message):
  """Exits 2 with `message` (no final period), as a bad flag does."""
  print(f"{_program_name(argv)}: error: {message}. See --helpshort.",
        file=sys.stderr)
  sys.exit(2)


@contextlib.contextmanager
def user_errors(*error_types):
  """Turns the given exception types into one line on stderr and exit 1."""
  try:
    yield
  except error_types as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(1)



def program_flag_lines(module_name):
  """The program's flags as "--name=value" lines, for a --flagfile.

  Args:
    module_name: the program's `__name__` ("__main__" when run with -m);
      its key flags are its own and those it adopted, not absl's or
      TensorFlow's.

  Returns:
    Sorted list of str; flags whose value is None (unset) are left out.
  """
  lines = []
  for flag in sorted(flags.FLAGS.get_key_flags_for_module(module_name),
                     key=lambda flag: flag.name):
    if flag.name in ("flagfile", "undefok"):
      continue
    serialized = flag.serialize()
    if serialized:
      lines.append(serialized)
  return lines
