"""What every `python -m tf_raw...` program shares: flags, user errors, set-up.

A user mistake gets one sentence on stderr and a non-zero exit, never a
traceback: exit status 2 for a bad flag (as `absl` and `argparse` do for usage
errors), 1 for a problem found while running (data, checkpoint, divergence),
130 for Ctrl-C and 143 for SIGTERM.

Every program's `main` is decorated with `@cli.boundary`: whatever a user's
files or paths can make fail (an `OSError`, a decoding error, a TensorFlow
I/O error) that no inner layer turned into a sentence yet becomes one line
there, with the right exit status; a genuine bug (any other exception) keeps
its traceback. SIGTERM unwinds like Ctrl-C, so `finally` blocks (a download's
`.part` file, a temporary folder) clean up before the process ends.
"""

import contextlib
import errno
import functools
import os
import re
import signal
import sys
import threading

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
    off). It is about 1.5x faster for this network there (docs/history.md,
    benchmarks round one: tf_raw 1,061 images/sec on, 727 off), so it is
    asked for explicitly, whatever the CPU.
  * TF_CPP_MIN_LOG_LEVEL=2: hide TensorFlow's C++ info and warning chatter.
  """
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_flags_or_exit(argv):
  """absl `flags_parser` for `app.run`: a bad flag is one line and exit 2.

  A --flagfile that is not UTF-8 text is a bad flag too.
  """
  try:
    return flags.FLAGS(argv)
  except flags.Error as error:
    print(f"{_program_name(argv)}: error: {_sentence(error)} "
          "See --helpfull for every flag.", file=sys.stderr)
    sys.exit(2)
  except UnicodeDecodeError as error:
    print(f"{_program_name(argv)}: error: a --flagfile is not UTF-8 text "
          f"({error.reason} at byte {error.start}); fix it or write it again. "
          "See --helpfull for every flag.", file=sys.stderr)
    sys.exit(2)
  except OSError as error:
    print(f"{_program_name(argv)}: error: {printable(describe_os_error(error))} See "
          "--helpfull for every flag.", file=sys.stderr)
    sys.exit(2)


def printable(text):
  """`text` with every unprintable character escaped (\\x1e, \\udcff, ...).

  A user's value may hold control characters (one of which, \\x1e, even
  splits lines) or bytes that are not UTF-8; echoed as they are, they would
  break the one-line message or the terminal.
  """
  text = str(text)
  if text.isprintable():
    return text
  return "".join(character if character.isprintable()
                 else repr(character)[1:-1] for character in text)


def _sentence(error):
  """absl's message as a sentence, its two rough edges smoothed."""
  text = printable(str(error).strip())
  # "('Non-boolean argument to boolean flag', 'maybe')" for --shuffle=maybe.
  text = re.sub(r"\('Non-boolean argument to boolean flag', '(.*)'\)",
                r"'\1' is not true or false", text)
  text = text.replace(" ?", "?")  # "Did you mean: learning_rate ?"
  return text if text.endswith((".", "?")) else text + "."


def reject_extra_arguments(argv):
  """Exits 2 when positional arguments were given (all settings are flags)."""
  if len(argv) > 1:
    print(f"{_program_name(argv)}: error: unexpected argument(s) "
          f"{printable(' '.join(argv[1:]))!r}; every setting is a --flag=value "
          "(see --helpfull).", file=sys.stderr)
    sys.exit(2)


def usage_error(argv, message):
  """Exits 2 with `message` (no final period), as a bad flag does."""
  print(f"{_program_name(argv)}: error: {printable(message)}. See --helpshort.",
        file=sys.stderr)
  sys.exit(2)


@contextlib.contextmanager
def user_errors(*error_types):
  """Turns the given exception types into one line on stderr and exit 1."""
  try:
    yield
  except error_types as error:
    print(f"error: {printable(error)}", file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------------------
# The boundary around every program's main.


class Terminated(BaseException):
  """SIGTERM arrived (a BaseException, like KeyboardInterrupt: it unwinds)."""


def _raise_terminated(signum, frame):
  del signum, frame
  raise Terminated()


# What to do about a failed file operation, by errno.
_ADVICE = {
    errno.ENOSPC: "free some disk space and run the same command again",
    errno.EDQUOT: "free some disk space and run the same command again",
    errno.EACCES: "fix its permissions or choose another path",
    errno.EPERM: "fix its permissions or choose another path",
    errno.EROFS: "choose a path on a writable filesystem",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a file is in the way where a folder is expected; move it "
                   "or choose another path",
    errno.EISDIR: "a folder is where a file is expected; move it or choose "
                  "another path",
    errno.EEXIST: "move it away or choose another path",
    errno.ENAMETOOLONG: "choose a shorter path",
}


def describe_os_error(error):
  """One sentence for a failed file operation: what, where, what to do."""
  where = error.filename
  if isinstance(where, bytes):
    where = os.fsdecode(where)
  reason = error.strerror or str(error) or type(error).__name__
  advice = _ADVICE.get(error.errno, "check the path and try again")
  if where is None:
    return f"A file operation failed ({reason}); {advice}."
  target = f"{where!r}" if not str(where).isprintable() else str(where)
  return f"Cannot use {target} ({reason}); {advice}."


def _tensorflow_io_error(error):
  """A sentence for a TensorFlow file-system error, or None for anything else.

  Only the error classes TensorFlow's file system raises about a path count
  (NotFound, PermissionDenied, ResourceExhausted, ...); InvalidArgument and
  the like may be bugs and keep their traceback.
  """
  tf_errors = sys.modules.get("tensorflow.python.framework.errors_impl")
  if tf_errors is None:
    return None
  io_errors = (tf_errors.NotFoundError, tf_errors.PermissionDeniedError,
               tf_errors.ResourceExhaustedError, tf_errors.AlreadyExistsError,
               tf_errors.FailedPreconditionError, tf_errors.DataLossError,
               tf_errors.UnimplementedError)
  if not isinstance(error, io_errors):
    return None
  from tf_raw.run_folder import run_dir  # pylint: disable=g-import-not-at-top
  text = run_dir.one_line(error, 300)
  advice = ("free some disk space and run the same command again"
            if isinstance(error, tf_errors.ResourceExhaustedError) else
            "check the path, its permissions and the free disk space")
  return f"TensorFlow could not read or write a file ({text}); {advice}."


def boundary(main):
  """Decorates a program's `main(argv)`: no traceback for what a user caused.

  * Ctrl-C: "error: interrupted" and exit 130; SIGTERM: exit 143, after
    `finally` blocks ran (SIGTERM is turned into `Terminated` for the call).
  * OSError (a path that is missing, a file where a folder should be,
    read-only, disk full), a UnicodeError (a file or name that is not
    UTF-8), a TensorFlow file-system error: one line, exit 1.
  * Anything else is a bug: its traceback is shown (set TF_RAW_TRACEBACK=1
    to see one for the errors above too).
  """
  @functools.wraps(main)
  def guarded_main(argv):
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {}
    if in_main_thread:
      # The start-up handler (tf_raw/__init__.py) has done its job.
      previous[signal.SIGINT] = signal.signal(signal.SIGINT,
                                              signal.default_int_handler)
      previous[signal.SIGTERM] = signal.signal(signal.SIGTERM,
                                               _raise_terminated)
    show = os.environ.get("TF_RAW_TRACEBACK") == "1"
    try:
      return main(argv)
    except KeyboardInterrupt:
      if show:
        raise
      print("error: interrupted (Ctrl-C); files being written were removed, "
            "so run the same command again.", file=sys.stderr)
      sys.exit(130)
    except Terminated:
      if show:
        raise
      print("error: terminated (SIGTERM); files being written were removed, "
            "so run the same command again.", file=sys.stderr)
      sys.exit(143)
    except OSError as error:
      if show:
        raise
      print(f"error: {printable(describe_os_error(error))}", file=sys.stderr)
      sys.exit(1)
    except UnicodeError as error:
      if show:
        raise
      print(f"error: a file or file name is not UTF-8 text "
            f"({printable(error)}); rename "
            "or convert it.", file=sys.stderr)
      sys.exit(1)
    except Exception as error:  # pylint: disable=broad-except
      sentence = _tensorflow_io_error(error)
      if sentence is None or show:
        raise
      print(f"error: {printable(sentence)}", file=sys.stderr)
      sys.exit(1)
    finally:
      for signum, handler in previous.items():
        signal.signal(signum, handler)
  return guarded_main



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
