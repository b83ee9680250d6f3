"""What every `python -m tf_raw.<program>` shares: flag parsing and user errors.

A user mistake gets one sentence on stderr and a non-zero exit, never a
traceback: exit status 2 for a bad flag (as `absl` and `argparse` do for usage
errors), 1 for a problem found while running (data, checkpoint, divergence).
"""

import contextlib
import re
import sys

from absl import flags

PROGRAM = "tf_raw"


def _program_name(argv):
  name = argv[0] if argv else PROGRAM
  return "python -m tf_raw." + name.rsplit("/", 1)[-1].removesuffix(".py")


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
