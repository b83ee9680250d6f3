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


@contextlib.contextmanager
def user_errors(*error_types):
  """Turns the given exception types into one line on stderr and exit 1."""
  try:
    yield
  except error_types as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(1)

