"""Test helper: run a `python -m tf_raw.<program>` inside the test process.

    code, stdout, stderr = run_program(train, ["--epochs=1", ...])

Parses the arguments with the programs' own parser (`cli.parse_flags_or_exit`,
as `app.run` does) and calls `main`, so flags, validators and exit codes are
the real ones, without paying TensorFlow's start-up per program. The flag
values are reset before and after.
"""

import contextlib
import io

from absl import flags

from flags import cli


def run_program(module, args):
  """Returns (exit code, stdout, stderr) of `module.main` on `args`."""
  flags.FLAGS.unparse_flags()
  stdout, stderr = io.StringIO(), io.StringIO()
  code = 0
  with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
    try:
      module.main(cli.parse_flags_or_exit([module.__file__, *args]))
    except SystemExit as exit_:
      code = exit_.code
    finally:
      flags.FLAGS.unparse_flags()
  return code, stdout.getvalue(), stderr.getvalue()
