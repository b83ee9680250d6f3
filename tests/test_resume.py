"""Exact resume: a run stopped anywhere and restarted ends where a straight
run ends, bit for bit, with every step run exactly once and every evaluation
recorded exactly once; a diverging run stops with the last good checkpoint.

The oracle is the same program run without interruption: its final
checkpoint, its steps.log (one line per step: step, epoch, batch, a checksum
of the batch's image indices) and its metrics.jsonl.
"""

import os
import signal

import numpy as np
import pytest
import tensorflow as tf

from tests import cli_fixtures
from tf_raw import config as config_lib
from tf_raw import data
from tf_raw.run_folder import run_dir
from tf_raw.run_folder import guard

# 96 images in batches of 12: 8 steps per epoch, 24 steps in 3 epochs.
# --log_every_steps=3 makes each train_steps call 3 steps or fewer (calls end
# on multiples of 3 and at epoch ends), so a signal can stop a run mid-epoch
# and mid-way between two calls of several steps each.
STEPS_PER_EPOCH = 8
SMALL_RUN = ("--dataset=synthetic", "--synthetic_train_size=96",
             "--synthetic_test_size=20", "--batch_size=12", "--epochs=3",
             "--eval_every=1", "--noprint_predictions",
             "--checkpoint_every_steps=0", "--log_every_steps=3",
             "--deterministic", "--step_log")


def _records_without_time(model_dir):
  """Every record, epochs and evaluations, less what timing decides."""
  return [{key: value for key, value in record.items()
           if key not in ("time", "images_per_sec")}
          for record in run_dir.read_metrics(model_dir, kind=None)]


def _steps(model_dir):
  return run_dir.read_step_log(os.path.join(model_dir, run_dir.STEP_LOG_FILE))


@pytest.fixture(scope="module")
def diverging_run(tmp_path_factory):
  """A run whose loss overflows, started once; it overlaps the next test."""
  model_dir = str(tmp_path_factory.mktemp("diverge") / "run")
  # A learning rate of 1e30 makes step 1's update huge (still finite), so
  # step 2's loss overflows.
  process = cli_fixtures.start_train(
      "--dataset=synthetic", "--synthetic_train_size=48",
      "--synthetic_test_size=10", "--batch_size=12", "--epochs=1",
      "--learning_rate=1e30", "--checkpoint_every_steps=1",
      f"--model_dir={model_dir}")
  yield process, model_dir
  if process.poll() is None:
    process.kill()
    process.communicate()


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
  """The oracle: SMALL_RUN without interruption, started once, waited for by
  `_finished`; it overlaps the first test that uses it (TF starts slowly)."""
  model_dir = str(tmp_path_factory.mktemp("straight") / "run")
  process = cli_fixtures.start_train(*SMALL_RUN, f"--model_dir={model_dir}")
  yield process, model_dir
  if process.poll() is None:
    process.kill()
    process.communicate()


def _finished(straight_run):
  process, model_dir = straight_run
  if process.returncode is None:
    _, err = process.communicate(timeout=900)
    assert process.returncode == 0, err
  assert process.returncode == 0
  return model_dir


def test_cli_sigint_mid_epoch_then_resume_is_bit_identical(tmp_path,
                                                         diverging_run,
                                                         straight_run):
  del diverging_run  # Only started here, to run alongside (TF starts slowly).
  # On a loaded machine the signal can land late, in the call that ends an
  # epoch; then the stop is not mid-epoch and the run is tried again afresh.
  for attempt in range(3):
    resumed_dir = str(tmp_path / f"resumed{attempt}")
    interrupted = cli_fixtures.start_train(*SMALL_RUN,
                                           f"--model_dir={resumed_dir}")
    # Step 10 is the second step of epoch 1; the signal lands during step 11
    # or soon after, and the run finishes the call it is in, then stops.
    cli_fixtures.wait_for_step(
        os.path.join(resumed_dir, run_dir.STEP_LOG_FILE), 10, interrupted)
    interrupted.send_signal(signal.SIGINT)
    out, err = interrupted.communicate(timeout=900)
    assert interrupted.returncode == 128 + signal.SIGINT, err
    assert cli_fixtures.error_lines(err) == []  # No traceback.
    assert "Got SIGINT: saved a checkpoint at step " in out
    stopped_at = int(out.split("saved a checkpoint at step ")[1].split(";")[0])
    assert 10 <= stopped_at < 3 * STEPS_PER_EPOCH
    if stopped_at % STEPS_PER_EPOCH:
      break
  assert stopped_at % STEPS_PER_EPOCH  # Mid-epoch, so the test means it.

  resumed = cli_fixtures.run_train(*SMALL_RUN, f"--model_dir={resumed_dir}")
  assert resumed.returncode == 0, resumed.stderr
  assert (f"ckpt-{stopped_at} at step {stopped_at} (epoch "
          f"{stopped_at // STEPS_PER_EPOCH})") in resumed.stdout
  straight_dir = _finished(straight_run)

  # Same weights, slots, step and loss sum, bit for bit.
  expected = cli_fixtures.checkpoint_values(straight_dir)
  actual = cli_fixtures.checkpoint_values(resumed_dir)
  assert sorted(actual) == sorted(expected)
  for name, value in expected.items():
    np.testing.assert_array_equal(actual[name], value, err_msg=name)
  assert actual["global_step/.ATTRIBUTES/VARIABLE_VALUE"] == 24

  # Every step exactly once, on the same batch, in the same order.
  (straight_steps,) = _steps(straight_dir)
  first, second = _steps(resumed_dir)
  assert [step for step, *_ in straight_steps] == list(range(1, 25))
  assert first[-1][0] == stopped_at and second[0][0] == stopped_at + 1
  assert first + second == straight_steps
  # One evaluation per epoch, none lost or repeated, same results.
  assert _records_without_time(resumed_dir) == _records_without_time(
      straight_dir)
  assert [r["epoch"] for r in run_dir.read_metrics(resumed_dir)] == [0, 1, 2]


def test_cli_kill_9_mid_epoch_then_resume_redoes_only_the_lost_steps(
    tmp_path, straight_run):
  # A real SIGKILL: no handler runs, nothing is flushed or saved. A
  # checkpoint every 4 steps: the restart goes back to the newest one (step
  # 12, mid-epoch 1, if the kill lands in steps 13 to 15) and runs the steps
  # after it again, on the same batches, ending where the straight run ends.
  model_dir = str(tmp_path / "killed")
  flags = [flag.replace("--checkpoint_every_steps=0",
                        "--checkpoint_every_steps=4") for flag in SMALL_RUN]
  killed = cli_fixtures.start_train(*flags, f"--model_dir={model_dir}")
  cli_fixtures.wait_for_step(os.path.join(model_dir, run_dir.STEP_LOG_FILE),
                             13, killed)
  killed.kill()
  killed.communicate(timeout=900)
  assert killed.returncode == -signal.SIGKILL
  checkpoint = tf.train.latest_checkpoint(model_dir)
  saved_step = int(checkpoint.rsplit("-", 1)[1])
  assert saved_step >= 12 and saved_step % 4 == 0

  resumed = cli_fixtures.run_train(*flags, f"--model_dir={model_dir}")
  assert resumed.returncode == 0, resumed.stderr
  assert (f"Resuming from {checkpoint} at step {saved_step} (epoch "
          f"{saved_step // STEPS_PER_EPOCH})") in resumed.stdout
  straight_dir = _finished(straight_run)

  expected = cli_fixtures.checkpoint_values(straight_dir)
  actual = cli_fixtures.checkpoint_values(model_dir)
  assert sorted(actual) == sorted(expected)
  for name, value in expected.items():
    np.testing.assert_array_equal(actual[name], value, err_msg=name)
  # Steps after the checkpoint ran twice, each time on the straight run's
  # batch; the second session starts right after the checkpoint.
  (straight_steps,) = _steps(straight_dir)
  first, second = _steps(model_dir)
  assert first[-1][0] >= 13 and second[0][0] == saved_step + 1
  assert first == straight_steps[:len(first)]
  assert second == straight_steps[saved_step:]
  assert _records_without_time(model_dir) == _records_without_time(
      straight_dir)


def test_cli_divergence_stops_naming_the_step_and_keeps_the_checkpoint(
    diverging_run):
  process, model_dir = diverging_run
  _, err = process.communicate(timeout=900)
  assert process.returncode == 1
  good = os.path.join(model_dir, "ckpt-1")
  assert cli_fixtures.error_lines(err) == [
      "error: The loss became NaN or infinite at step 2; training stopped and "
      f"the last good checkpoint, {good}, is intact; lower --learning_rate."]
  assert tf.train.latest_checkpoint(model_dir) == good
  values = cli_fixtures.checkpoint_values(good)
  assert all(np.all(np.isfinite(v)) for v in values.values())
  assert not [name for name in os.listdir(model_dir)
              if name.startswith("ckpt-") and not name.startswith("ckpt-1.")]


# ---------------------------------------------------------------------------
# In-process, at chosen moments: around an evaluation, where a record could be
# lost or written twice, and a crash mid-epoch. Signals are real (os.kill).


def _config(model_dir, **overrides):
  settings = dict(dataset="synthetic", model_dir=model_dir, epochs=2,
                  batch_size=12, checkpoint_every_steps=0, eval_every=1,
                  print_predictions=False, step_log=True)
  settings.update(overrides)
  return config_lib.TrainConfig(**settings)


class _Crash(Exception):
  """Stands in for kill -9: the process is gone, nothing else runs."""


class InProcessInterruptionTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.dataset = data.synthetic(num_train=48, num_test=20, seed=1)

  def _trainer(self, model_dir, lines=None):
    out = lines.append if lines is not None else (lambda line: None)
    return guard.GuardedTrainer(_config(model_dir), self.dataset, out=out)

  def _signal_during_first_evaluation(self, trainer, signum):
    evaluate = trainer.evaluate

    def evaluate_and_get_signalled():
      trainer.evaluate = evaluate
      os.kill(os.getpid(), signum)  # Handled before this returns.
      return evaluate()
    trainer.evaluate = evaluate_and_get_signalled

  def test_sigterm_during_evaluation_then_resume_records_it_once(self):
    model_dir = os.path.join(self.get_temp_dir(), "sigterm")
    trainer = self._trainer(model_dir)
    self._signal_during_first_evaluation(trainer, signal.SIGTERM)
    lines = []
    trainer.out = lines.append
    with self.assertRaises(SystemExit) as stopped:
      trainer.run()
    self.assertEqual(stopped.exception.code, 128 + signal.SIGTERM)
    # The evaluation finished and the run stopped before another step.
    self.assertIn("Got SIGTERM: saved a checkpoint at step 4", lines[-1])
    self.assertEqual([(r["epoch"], r["step"])
                      for r in run_dir.read_metrics(model_dir)], [(0, 4)])

    resumed_lines = []
    self._trainer(model_dir, resumed_lines).run()
    self.assertIn("at step 4 (epoch 1)", resumed_lines[0])
    self.assertNotIn("Evaluating epoch", "\n".join(resumed_lines))
    self.assertEqual([(r["epoch"], r["step"])
                      for r in run_dir.read_metrics(model_dir)],
                     [(0, 4), (1, 8)])
    steps = [[step for step, *_ in session] for session in _steps(model_dir)]
    self.assertEqual(steps, [[1, 2, 3, 4], [5, 6, 7, 8]])

    # Resuming the finished run does nothing, says so, and writes nothing.
    before = cli_fixtures.snapshot(model_dir)
    again_lines = []
    self.assertIsNone(self._trainer(model_dir, again_lines).run())
    self.assertIn("Nothing to do", again_lines[-1])
    self.assertEqual(cli_fixtures.snapshot(model_dir), before)

  def test_death_before_evaluation_is_caught_up_on_restart(self):
    model_dir = os.path.join(self.get_temp_dir(), "crash")
    trainer = self._trainer(model_dir)

    def crash():
      raise _Crash()
    trainer.evaluate = crash  # Dies right after the epoch-end checkpoint.
    with self.assertRaises(_Crash):
      trainer.run()
    self.assertEqual(run_dir.read_metrics(model_dir), [])
    self.assertEqual(tf.train.latest_checkpoint(model_dir),
                     os.path.join(model_dir, "ckpt-4"))

    lines = []
    restarted = self._trainer(model_dir, lines)
    restarted.run()
    self.assertIn("Evaluating epoch 0, which the previous run ended before "
                  "evaluating.", lines)
    records = run_dir.read_metrics(model_dir)
    self.assertEqual([(r["epoch"], r["step"]) for r in records],
                     [(0, 4), (1, 8)])
    # The caught-up record is the model at step 4: check it against the
    # checkpoint of step 4, evaluated by a fresh trainer.
    checker = self._trainer(os.path.join(self.get_temp_dir(), "unused"))
    checker.checkpoint.restore(os.path.join(model_dir, "ckpt-4"))
    self.assertEqual(records[0]["accuracy"], checker.evaluate()[0])

  def test_death_before_the_epoch_record_is_caught_up_exactly_once(self):
    model_dir = os.path.join(self.get_temp_dir(), "epoch_crash")
    trainer = self._trainer(model_dir)
    mean_losses = []

    def crash(*args):
      mean_losses.append(trainer.mean_epoch_loss())  # What it would write.
      raise _Crash()
    trainer._log_epoch = crash  # Dies right after the epoch-end checkpoint.
    with self.assertRaises(_Crash):
      trainer.run()
    self.assertEqual(run_dir.read_metrics(model_dir, kind=None), [])

    self._trainer(model_dir).run()
    epochs = run_dir.read_metrics(model_dir, kind="epoch")
    self.assertEqual([(r["epoch"], r["step"]) for r in epochs],
                     [(0, 4), (1, 8)])
    # The mean loss comes from the checkpoint's loss sum: exact. The speed
    # of the epoch that died was not measured.
    self.assertEqual(epochs[0]["loss"], mean_losses[0])
    self.assertIsNone(epochs[0]["images_per_sec"])
    self.assertGreater(epochs[1]["images_per_sec"], 0)
    self.assertEqual([r["kind"] for r in run_dir.read_metrics(model_dir, None)],
                     ["epoch", "evaluation", "epoch", "evaluation"])

  def test_crash_mid_epoch_redoes_only_the_steps_after_the_checkpoint(self):
    model_dir = os.path.join(self.get_temp_dir(), "crash_mid_epoch")
    # 4 steps an epoch, a checkpoint every 3 steps: saved at 3, 4, 6, 8.
    # log_every_steps=1: one step per train_batches call, to crash between
    # two steps.
    config = _config(model_dir, checkpoint_every_steps=3, log_every_steps=1)
    trainer = guard.GuardedTrainer(config, self.dataset, out=lambda line: None)
    train_batches = trainer.train_batches

    def crash_before_step_6(*args):
      if int(trainer.learner.global_step.numpy()) == 5:
        raise _Crash()  # Step 5 ran and was logged, not saved.
      return train_batches(*args)
    trainer.train_batches = crash_before_step_6
    with self.assertRaises(_Crash):
      trainer.run()

    lines = []
    guard.GuardedTrainer(_config(model_dir, checkpoint_every_steps=3),
                     self.dataset, out=lines.append).run()
    self.assertIn("ckpt-4 at step 4 (epoch 1)", lines[0])
    first, second = _steps(model_dir)
    self.assertEqual([step for step, *_ in first], [1, 2, 3, 4, 5])
    self.assertEqual([step for step, *_ in second], [5, 6, 7, 8])
    self.assertEqual(first[-1], second[0])  # Redone on the very same batch.
    self.assertEqual([(r["epoch"], r["step"])
                      for r in run_dir.read_metrics(model_dir)],
                     [(0, 4), (1, 8)])

  def test_torn_and_stale_metrics_lines_are_dropped(self):
    model_dir = os.path.join(self.get_temp_dir(), "torn")
    os.makedirs(model_dir)
    path = os.path.join(model_dir, run_dir.METRICS_FILE)
    with open(path, "w") as f:
      f.write('{"epoch": 0, "step": 4}\n{"epoch": 1, "step": 8}\n{"epo')
    self.assertEqual(run_dir.keep_metrics_up_to(model_dir, 4), 1)
    with open(path) as f:
      self.assertEqual(f.read(), '{"epoch": 0, "step": 4}\n')
    run_dir.append_metric(model_dir, {"epoch": 1, "step": 8})
    self.assertEqual([r["step"] for r in run_dir.read_metrics(model_dir)],
                     [4, 8])


if __name__ == "__main__":
  pytest.main([__file__])
