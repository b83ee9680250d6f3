"""Test helpers: run `python -m tf_raw.train` as a user would, and read results.

    train_command(*flags)          argv of the real program
    run_train(*flags, ...)         run it to the end -> CompletedProcess
    start_train(*flags, ...)       start it (Popen), e.g. to signal it
    error_lines(stderr)            stderr minus TensorFlow's start-up chatter
    wait_for_step(log, step, proc) poll a steps.log until a step has run
    checkpoint_values(model_dir)   every variable of the newest checkpoint
    permission_bound_command(cmd)  file permissions bind it, even as root
    snapshot(folder)               names, sizes and mtimes, to prove
                                   "nothing was written"
"""

import os
import shutil
import subprocess
import sys
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# TensorFlow's C++ logging before absl is initialised ignores
# TF_CPP_MIN_LOG_LEVEL; these prefixes are its lines, not ours.
_CHATTER_PREFIXES = ("WARNING: All log messages", "I0000", "E0000", "W0000")

def train_command(*flags):
  return [sys.executable, "-m", "tf_raw.train", *flags]


def _env():
  env = dict(os.environ)
  env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
  return env


def run_train(*flags, timeout=900, command=None):
  """Runs the program to its end; returns the CompletedProcess (text).

  Args:
    flags: its arguments.
    timeout: seconds before the test gives up (generous: a loaded machine
      can take a minute to import TensorFlow).
    command: the whole command instead (e.g. from `permission_bound_command`).
  """
  return subprocess.run(command or train_command(*flags), cwd=REPO_ROOT,
                        env=_env(), capture_output=True, text=True,
                        timeout=timeout, check=False)


def start_train(*flags):
  """Starts the program; stdout and stderr are pipes (read at the end)."""
  return subprocess.Popen(
      train_command(*flags), cwd=REPO_ROOT, env=_env(), text=True,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def permission_bound_command(command):
  """`command`, run so that read-only files and folders are read-only to it.

  root ignores permission bits through two capabilities (CAP_DAC_OVERRIDE,
  CAP_DAC_READ_SEARCH); `setpriv` drops them from the bounding set, so the
  child is still root (it can run the interpreter under /root) but a 0o555
  folder or a 0o000 file stops it as it would anyone.

  Returns:
    The command, or None for root without `setpriv` (util-linux): then no
    file can be made unwritable to the child.
  """
  if os.geteuid() != 0:
    return command
  setpriv = shutil.which("setpriv")
  if setpriv is None:
    return None
  return [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]


def error_lines(stderr):
  """The lines of stderr that the program wrote (not TensorFlow's C++ log)."""
  return [line for line in stderr.splitlines()
          if line.strip() and not line.startswith(_CHATTER_PREFIXES)]


def wait_for_step(step_log, step, process, timeout=900):
  """Waits until steps.log records `step` (or more); fails if the run ends."""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if process.poll() is not None:
      raise AssertionError(f"the run ended (status {process.returncode}) "
                           f"before step {step}: {process.stderr.read()}")
    if os.path.exists(step_log):
      with open(step_log) as f:
        steps = [int(line.split()[0]) for line in f
                 if line.endswith("\n") and not line.startswith("#")]
      if steps and steps[-1] >= step:
        return steps[-1]
    time.sleep(0.005)
  raise AssertionError(f"step {step} did not run within {timeout} s")


def checkpoint_values(prefix_or_dir):
  """{name: array} of a checkpoint (the newest in a folder), save_counter
  excluded (it counts saves, which differ between interrupted runs)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  prefix = prefix_or_dir
  if os.path.isdir(prefix_or_dir):
    prefix = tf.train.latest_checkpoint(prefix_or_dir)
  reader = tf.train.load_checkpoint(prefix)
  return {name: np.asarray(reader.get_tensor(name))
          for name in reader.get_variable_to_shape_map()
          if not name.startswith(("save_counter", "_CHECKPOINTABLE"))}


def snapshot(folder):
  """{relative path: (size, mtime_ns)} of every file under folder, and
  {relative path: "folder"} of every folder.

  Equal snapshots: nothing was added, removed or rewritten. (A folder's own
  mtime is left out: a temporary file made and removed again changes it.)
  """
  found = {}
  if not os.path.isdir(folder):
    return found
  for root, dirs, files in os.walk(folder):
    for name in dirs:
      found[os.path.relpath(os.path.join(root, name), folder)] = "folder"
    for name in files:
      path = os.path.join(root, name)
      info = os.lstat(path)
      found[os.path.relpath(path, folder)] = (info.st_size, info.st_mtime_ns)
  return found
