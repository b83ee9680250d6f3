"""flags/cli.py's boundary: what a user caused is one line, a bug a traceback."""

import contextlib
import errno
import io
import os
import signal

import pytest
import tensorflow as tf

from flags import cli


def _call(error):
  @cli.boundary
  def main(argv):
    del argv
    raise error

  stderr = io.StringIO()
  with contextlib.redirect_stderr(stderr):
    with pytest.raises(SystemExit) as exit_:
      main(["prog"])
  return exit_.value.code, stderr.getvalue()


@pytest.mark.parametrize("error, code, words", [
    (OSError(errno.ENOSPC, "No space left on device", "/d/f"), 1,
     "free some disk space"),
    (PermissionError(errno.EACCES, "Permission denied", "/d/f"), 1,
     "permissions"),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/d/f/x"), 1,
     "a file is in the way"),
    (OSError(errno.EIO, "Input/output error"), 1, "file operation failed"),
    (OSError(errno.ENOENT, "No such file", os.fsdecode(b"/d/\xff")), 1,
     "\\udcff"),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), 1,
     "not UTF-8"),
    (tf.errors.ResourceExhaustedError(None, None, "/d/x; No space left"), 1,
     "free some disk space"),
    (tf.errors.NotFoundError(None, None, "/d/x; No such file"), 1, "/d/x"),
    (KeyboardInterrupt(), 130, "interrupted"),
    (cli.Terminated(), 143, "terminated"),
])
def test_user_caused_errors_are_one_line(error, code, words):
  got_code, stderr = _call(error)
  assert got_code == code
  assert stderr.count("\n") == 1 and stderr.startswith("error: "), stderr
  assert words in stderr


@pytest.mark.parametrize("bug", [ValueError("bug"), TypeError("bug"),
                                 AssertionError("bug"), KeyError("bug"),
                                 tf.errors.InvalidArgumentError(None, None,
                                                                "bug")])
def test_a_bug_keeps_its_traceback(bug):
  @cli.boundary
  def main(argv):
    del argv
    raise bug

  with pytest.raises(type(bug)):
    main(["prog"])


def test_tracebacks_on_request(monkeypatch):
  monkeypatch.setenv("TF_RAW_TRACEBACK", "1")

  @cli.boundary
  def main(argv):
    del argv
    raise OSError(errno.ENOSPC, "No space left on device")

  with pytest.raises(OSError):
    main(["prog"])


def test_sigterm_unwinds_and_handlers_are_restored():
  before = signal.getsignal(signal.SIGTERM)
  cleaned = []

  @cli.boundary
  def main(argv):
    del argv
    try:
      os.kill(os.getpid(), signal.SIGTERM)
      for _ in range(10_000):  # The handler runs between bytecodes.
        pass
    finally:
      cleaned.append(True)

  with contextlib.redirect_stderr(io.StringIO()):
    with pytest.raises(SystemExit) as exit_:
      main(["prog"])
  assert exit_.value.code == 143 and cleaned == [True]
  assert signal.getsignal(signal.SIGTERM) == before


def test_printable_escapes_what_would_break_a_line():
  assert cli.printable("a\x1eb\nc") == "a\\x1eb\\nc"
  assert cli.printable(os.fsdecode(b"r\xff")) == "r\\udcff"
  assert cli.printable("rün 模型") == "rün 模型"
