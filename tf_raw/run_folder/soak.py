r"""Soak test of exact resume: `python -m tf_raw.run_folder.soak` (or `make soak`).

Not a unit test (it takes minutes): it restarts one small synthetic run over
and over and checks what BUILD.md promises ("What survives what").

1. Reference: the run trained straight through, in this process.
2. Signals: the same run in a fresh folder, by `--restarts` fresh `Trainer`s
   in this process, each stopped by a real SIGINT or SIGTERM (sent by a
   watcher thread once the session has run 1 to 8 steps, so it lands at any
   moment: mid-step, mid-save, mid-evaluation), then one to finish it.
   Every step must run exactly once, on the same batch as in the reference;
   metrics.jsonl must hold the reference's records, none missing or
   repeated; the final checkpoint must equal the reference's bit for bit;
   and the process's memory (RSS) must not grow from restart to restart.
3. kill -9: the same checks for `--kills` runs of `python -m tf_raw.train`
   killed with SIGKILL after 2 to 8 steps, except that steps after the last
   checkpoint may run again (at most --checkpoint_every_steps of them per
   kill), each time on the same batch.

Prints one line per phase and PASS, or FAIL lines and exits 1.
"""

import dataclasses
import gc
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from absl import app

from flags import soak_flags  # pylint: disable=g-bad-import-order
from flags import cli

# One epoch: 60 images in batches of 10; each evaluation: 10 images.
_RUN_SETTINGS = dict(
    dataset="synthetic", synthetic_train_size=60, synthetic_test_size=10,
    batch_size=10, eval_every=1, print_predictions=False,
    checkpoint_every_steps=4, max_to_keep=2, deterministic=True,
    step_log=True)
_STEPS_PER_EPOCH = 6
_MAX_STEPS_PER_SESSION = 8  # A signal is sent after 1 to this many steps.


def _rss_mb(pid="self"):
  """Resident memory of a process in MiB (from /proc; Linux only)."""
  with open(f"/proc/{pid}/status") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) / 1024.0
  return float("nan")


def _records_in(step_log):
  """How many step lines steps.log holds."""
  if not os.path.exists(step_log):
    return 0
  with open(step_log) as f:
    return sum(1 for line in f if line.endswith("\n") and line[0] != "#")


class _SignalAfterSteps(threading.Thread):
  """Sends `signum` to this process once steps.log has `steps` more lines."""

  def __init__(self, step_log, steps, signum):
    super().__init__(daemon=True)
    self._step_log, self._signum = step_log, signum
    self._target = _records_in(step_log) + steps
    self._done = threading.Event()

  def run(self):
    while not self._done.wait(0.002):
      if _records_in(self._step_log) >= self._target:
        os.kill(os.getpid(), self._signum)
        return

  def stop(self):
    self._done.set()
    self.join()


def _comparable(model_dir):
  """What must match the reference: checkpoint values, steps, evaluations."""
  from tf_raw.run_folder import run_dir  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(model_dir))
  values = {name: np.asarray(reader.get_tensor(name))
            for name in reader.get_variable_to_shape_map()
            if not name.startswith(("save_counter", "_CHECKPOINTABLE"))}
  sessions = run_dir.read_step_log(os.path.join(model_dir,
                                                run_dir.STEP_LOG_FILE))
  # Every record, evaluations and epochs, less what timing decides.
  metrics = [{k: v for k, v in record.items()
              if k not in ("time", "images_per_sec")}
             for record in run_dir.read_metrics(model_dir, kind=None)]
  return values, sessions, metrics


def _check(name, model_dir, reference, max_redone):
  """Compares a restarted run with the reference; returns (failures, redone
  steps per restart)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  ref_values, (ref_steps,), ref_metrics = reference
  values, sessions, metrics = _comparable(model_dir)
  failures = []
  if sorted(values) != sorted(ref_values) or not all(
      np.array_equal(values[key], ref_values[key]) for key in ref_values):
    failures.append(f"{name}: the final checkpoint differs from the reference")
  if metrics != ref_metrics:
    failures.append(f"{name}: metrics.jsonl has {len(metrics)} records, not "
                    f"the reference's {len(ref_metrics)} (or they differ)")
  by_step = {record[0]: record for record in ref_steps}
  next_step, redone = 1, []
  for index, session in enumerate(sessions):
    if not session:
      continue  # Killed before its first step.
    steps = [record[0] for record in session]
    if steps != list(range(steps[0], steps[0] + len(steps))):
      failures.append(f"{name}: session {index} skipped or repeated a step")
    if any(record != by_step.get(record[0]) for record in session):
      failures.append(f"{name}: session {index} ran a step on another batch")
    redone.append(next_step - steps[0])
    next_step = steps[-1] + 1
  if next_step != len(ref_steps) + 1:
    failures.append(f"{name}: the steps end at {next_step - 1}, not "
                    f"{len(ref_steps)}")
  bad = [count for count in redone if not 0 <= count <= max_redone]
  if bad:
    failures.append(f"{name}: {len(bad)} restarts lost or redid too many "
                    f"steps: {bad[:5]}")
  return failures, redone


def _train_straight(model_dir, epochs, seed):
  from tf_raw import config as config_lib  # pylint: disable=g-import-not-at-top
  from tf_raw import sources  # pylint: disable=g-import-not-at-top
  from tf_raw.run_folder import guard  # pylint: disable=g-import-not-at-top
  config = config_lib.TrainConfig(model_dir=model_dir, epochs=epochs,
                                  seed=seed, **_RUN_SETTINGS)
  dataset = sources.load(config)
  guard.GuardedTrainer(config, dataset, out=lambda line: None).run()
  return config, dataset


def _signal_phase(config, dataset, restarts, rng):
  """Restarts the run in-process; returns (signals sent, RSS after each)."""
  from tf_raw.run_folder import guard  # pylint: disable=g-import-not-at-top
  from tf_raw.run_folder import run_dir  # pylint: disable=g-import-not-at-top
  step_log = os.path.join(config.model_dir, run_dir.STEP_LOG_FILE)
  sent, rss = {"SIGINT": 0, "SIGTERM": 0}, []
  while True:
    last = len(rss) >= restarts
    trainer = guard.GuardedTrainer(config, dataset, out=lambda line: None)
    watcher = None
    if not last:
      signum = rng.choice([signal.SIGINT, signal.SIGTERM])
      watcher = _SignalAfterSteps(
          step_log, rng.randint(1, _MAX_STEPS_PER_SESSION), signum)
      watcher.start()
    try:
      trainer.run()
      finished = True
    except SystemExit as stopped:
      assert stopped.code in (130, 143), stopped.code
      sent[signal.Signals(stopped.code - 128).name] += 1
      finished = False
    finally:
      if watcher:
        watcher.stop()
    del trainer
    gc.collect()
    rss.append(_rss_mb())
    if finished:
      return sent, rss


def _kill_phase(config, kills, rng):
  """Runs the CLI `kills` times, each SIGKILLed, then once to the end."""
  from tf_raw.run_folder import run_dir  # pylint: disable=g-import-not-at-top
  args = [sys.executable, "-m", "tf_raw.train", f"--model_dir={config.model_dir}",
          f"--epochs={config.epochs}", f"--seed={config.seed}"]
  args += [f"--{key}={value}" if not isinstance(value, bool) else
           f"--{'' if value else 'no'}{key}"
           for key, value in _RUN_SETTINGS.items()]
  env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))))
  step_log = os.path.join(config.model_dir, run_dir.STEP_LOG_FILE)
  child_rss = []
  for _ in range(kills + 1):
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    if len(child_rss) < kills:
      target = _records_in(step_log) + rng.randint(2, _MAX_STEPS_PER_SESSION)
      while process.poll() is None and _records_in(step_log) < target:
        time.sleep(0.002)
      if process.poll() is None:
        child_rss.append(_rss_mb(process.pid))
        process.kill()  # SIGKILL: no handler runs, nothing is flushed.
    if process.wait() not in (0, -signal.SIGKILL):
      raise RuntimeError(f"python -m tf_raw.train exited {process.returncode}")
    if process.returncode == 0:
      return child_rss
  return child_rss


def _late_signal(signum, frame):
  """A signal the watcher sent just after a run ended: harmless, ignored."""
  del signum, frame


@cli.boundary
def main(argv):
  cli.reject_extra_arguments(argv)
  cli.set_tensorflow_defaults()
  config = soak_flags.to_config()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top
  tf.get_logger().setLevel("ERROR")
  logging.set_verbosity(logging.ERROR)
  tf.config.experimental.enable_op_determinism()  # As --deterministic does.
  for signum in (signal.SIGINT, signal.SIGTERM):
    signal.signal(signum, _late_signal)

  work_dir = config.work_dir or tempfile.mkdtemp(prefix="tf_raw_soak_")
  rng = random.Random(config.seed)
  failures = []
  try:
    # Long enough that the restarts end before the run does.
    epochs = math.ceil(config.restarts * (_MAX_STEPS_PER_SESSION + 2)
                       / _STEPS_PER_EPOCH)
    start = time.monotonic()
    run_config, dataset = _train_straight(
        os.path.join(work_dir, "reference"), epochs, config.seed)
    reference = _comparable(run_config.model_dir)
    print(f"reference: {epochs * _STEPS_PER_EPOCH} steps, {epochs} "
          f"evaluations, trained straight in {time.monotonic() - start:.0f} s")

    start = time.monotonic()
    restarted = dataclasses.replace(
        run_config, model_dir=os.path.join(work_dir, "signals"))
    sent, rss = _signal_phase(restarted, dataset, config.restarts, rng)
    found, redone = _check("signals", restarted.model_dir, reference,
                           max_redone=0)
    failures += found
    print(f"signals: {len(rss) - 1} restarts ({sent['SIGINT']} SIGINT, "
          f"{sent['SIGTERM']} SIGTERM) in {time.monotonic() - start:.0f} s; "
          f"steps redone: {sum(redone)}; metrics and final checkpoint "
          f"{'equal the reference' if not found else 'DIFFER'}")
    half = len(rss) // 2
    growth = rss[-1] - rss[half]
    per_restart = growth / max(len(rss) - 1 - half, 1)
    print(f"memory: RSS {rss[0]:.0f} MiB after the first run, "
          f"{rss[half]:.0f} MiB after {half}, {rss[-1]:.0f} MiB after "
          f"{len(rss)}: {per_restart * 1024:+.0f} KiB per restart over the "
          "second half")
    if per_restart > 1.0:
      failures.append(f"memory grows by {per_restart:.2f} MiB per restart")

    if config.kills:
      start = time.monotonic()
      kill_epochs = math.ceil((config.kills * _MAX_STEPS_PER_SESSION + 12)
                              / _STEPS_PER_EPOCH)
      kill_reference_config, _ = _train_straight(
          os.path.join(work_dir, "kill_reference"), kill_epochs, config.seed)
      kill_reference = _comparable(kill_reference_config.model_dir)
      killed = dataclasses.replace(kill_reference_config,
                                   model_dir=os.path.join(work_dir, "kills"))
      child_rss = _kill_phase(killed, config.kills, rng)
      found, redone = _check("kill -9", killed.model_dir, kill_reference,
                             max_redone=_RUN_SETTINGS["checkpoint_every_steps"])
      failures += found
      print(f"kill -9: {len(child_rss)} kills in "
            f"{time.monotonic() - start:.0f} s; steps redone per restart: "
            f"{redone[1:]} (at most --checkpoint_every_steps="
            f"{_RUN_SETTINGS['checkpoint_every_steps']}); child RSS "
            f"{min(child_rss, default=0):.0f}..{max(child_rss, default=0):.0f}"
            f" MiB; metrics and final checkpoint "
            f"{'equal the reference' if not found else 'DIFFER'}")
  finally:
    if not config.work_dir:
      shutil.rmtree(work_dir, ignore_errors=True)
  for failure in failures:
    print("FAIL: " + failure)
  if failures:
    sys.exit(1)
  print("PASS")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags_or_exit)
