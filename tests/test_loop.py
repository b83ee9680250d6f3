"""The training loop: tracing, data order, learning, checkpoints and resume."""

import json
import os
import time
from unittest import mock

import numpy as np
import tensorflow as tf

from tf_raw import config as config_lib
from tf_raw import data
from tf_raw import loop
from tf_raw import step as step_lib
from tf_raw.run_folder import guard


def _config(model_dir, **overrides):
  settings = dict(dataset="synthetic", model_dir=model_dir, epochs=2,
                  batch_size=32, checkpoint_every_steps=0, eval_every=1,
                  print_predictions=False)
  settings.update(overrides)
  return config_lib.TrainConfig(**settings)


def _loss_lines(lines):
  """'epoch 2/2  loss 2.3026' of each progress line (speed and times cut)."""
  return ["  ".join(line.split("  ")[:2]) for line in lines
          if line.startswith("epoch ") and "  loss " in line]


class _StopAt(loop.Hook):
  """Asks the trainer to stop, as a signal would, once `step` is reached."""

  def __init__(self, step):
    self.step = step

  def after_step(self, trainer, step):
    if step >= self.step:
      trainer.stop_reason = "SIGINT"


class EpochOrderTest(tf.test.TestCase):

  def test_notebook_loop_runs_390_steps_and_drops_80_images(self):
    self.assertEqual(loop.steps_per_epoch(50_000, 128, True), 390)
    self.assertEqual(50_000 - 390 * 128, 80)
    self.assertEqual(loop.steps_per_epoch(50_000, 128, False), 391)

  def test_order_is_a_seeded_permutation_per_epoch(self):
    first = loop.epoch_order(7, 3, 1000)
    self.assertAllEqual(first, loop.epoch_order(7, 3, 1000))
    self.assertAllEqual(np.sort(first), np.arange(1000))
    self.assertNotAllEqual(first, loop.epoch_order(7, 4, 1000))
    self.assertNotAllEqual(first, loop.epoch_order(8, 3, 1000))

  def test_noshuffle_keeps_file_order(self):
    self.assertAllEqual(loop.epoch_order(7, 3, 5, shuffle=False),
                        np.arange(5))

  def test_no_step_per_epoch_is_an_error_one_step_is_not(self):
    dataset = data.synthetic(num_train=330, num_test=20, seed=1)
    model_dir = os.path.join(self.get_temp_dir(), "no_step")
    with self.assertRaises(loop.TrainingError) as caught:
      loop.Trainer(_config(model_dir, batch_size=400, drop_remainder=True),
                   dataset)
    self.assertEqual(
        str(caught.exception),
        "--batch_size=400 is larger than the 330 training images and "
        "--drop_remainder is set, so no step would run; lower --batch_size.")
    self.assertIsNone(loop.check_steps_per_epoch(1, 330, 330))


class TrainerTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.dataset = data.synthetic(num_train=330, num_test=200, seed=1)

  def _trainer(self, name, **overrides):
    model_dir = os.path.join(self.get_temp_dir(), name)
    lines = []
    trainer = guard.GuardedTrainer(_config(model_dir, **overrides), self.dataset,
                               out=lines.append)
    return trainer, lines

  def test_train_step_traces_once_including_the_partial_batch(self):
    trainer, _ = self._trainer("trace")
    trainer.run()  # 330 images, batch 32: 10 full steps and one of 10.
    self.assertEqual(trainer.learner.train_step.experimental_get_tracing_count(), 1)
    self.assertEqual(trainer.learner.predict.experimental_get_tracing_count(), 1)
    self.assertEqual(int(trainer.learner.global_step.numpy()), 2 * 11)

  def test_float_images_are_refused_in_one_sentence_not_cast(self):
    # The uint8 input signature would turn floats in [0, 1] into 0s and 1s.
    trainer, _ = self._trainer("floats", epochs=0)
    learner = trainer.learner
    images, labels = self.dataset.train_images[:8], self.dataset.train_labels[:8]
    floats = images.astype(np.float32) / 255.0
    weights = [w.numpy() for w in learner.model.weights]
    for function, args in [(learner.train_step, (floats, labels)),
                           (learner.train_steps, (floats, labels)),
                           (learner.predict, (floats,)),
                           (learner.predict_raw, (tf.constant(floats),)),
                           (learner.predict, (images.astype(np.int64),))]:
      with self.assertRaisesRegex(
          TypeError, r"^images must be uint8 pixels in 0\.\.255, not "
          r"(float32|int64) .*; pass the uint8 images"):
        function(*args)
    with self.assertRaises(TypeError):
      trainer.predict_in_batches(floats)
    self.assertEqual(int(learner.global_step.numpy()), 0)  # Nothing ran.
    for before, after in zip(weights, learner.model.weights):
      self.assertAllEqual(before, after)
    # uint8 passes, and the traced functions are still reachable.
    self.assertEqual(learner.predict(images).shape, (8,))
    self.assertEqual(learner.predict.experimental_get_tracing_count(), 1)

  def test_drop_remainder_skips_the_partial_batch(self):
    trainer, _ = self._trainer("drop", drop_remainder=True)
    trainer.run()
    self.assertEqual(int(trainer.learner.global_step.numpy()), 2 * 10)

  def test_every_variable_moves_and_step_loss_is_finite(self):
    trainer, _ = self._trainer("moves", epochs=0)
    before = [v.numpy() for v in trainer.learner.model.weights]
    images, labels = self.dataset.train_images, self.dataset.train_labels
    loss = trainer.learner.train_step(images[:32], labels[:32])
    self.assertTrue(np.isfinite(loss.numpy()))
    self.assertAllClose(loss, np.log(10.0), atol=0.01)  # Tiny weights: uniform.
    # The first steps are tiny (the mean square starts at one), so look for
    # any change at all rather than a large one.
    for old, new in zip(before, trainer.learner.model.weights):
      self.assertTrue(np.any(old != new.numpy()))

  def test_prints_the_notebooks_lines_and_writes_metrics(self):
    trainer, lines = self._trainer("lines", epochs=3, eval_every=2)
    accuracy = trainer.run()
    evaluated = [line for line in lines if line.startswith("epoch : ")]
    self.assertEqual([line.split(" and ")[0] for line in evaluated],
                     ["epoch : 0", "epoch : 2"])
    self.assertEqual(lines[-1], f"Final accuracy : {accuracy}")
    with open(os.path.join(trainer.config.model_dir, "metrics.jsonl")) as f:
      everything = [json.loads(line) for line in f]
    # Each epoch's mean loss and speed, then (when due) its evaluation.
    self.assertEqual([(r["kind"], r["epoch"]) for r in everything],
                     [("epoch", 0), ("evaluation", 0), ("epoch", 1),
                      ("epoch", 2), ("evaluation", 2)])
    epochs = [r for r in everything if r["kind"] == "epoch"]
    progress = [line for line in lines if line.startswith("epoch ") and
                " loss " in line]
    self.assertEqual([f"loss {r['loss']:.4f}" for r in epochs],
                     [line.split("  ")[1] for line in progress])
    self.assertTrue(all(r["images_per_sec"] > 0 for r in epochs))
    records = [r for r in everything if r["kind"] == "evaluation"]
    self.assertEqual([r["epoch"] for r in records], [0, 2])
    self.assertEqual(records[-1]["accuracy"], accuracy)
    self.assertEqual(records[-1]["test_images"], 200)

  def test_each_epochs_loss_is_the_mean_of_its_step_losses(self):
    # Learning rate 0 keeps the weights where they started, so every step's
    # loss can be computed again afterwards, batch by batch in file order
    # (no shuffle, no dropout): 11 batches, the last of 10 images.
    trainer, _ = self._trainer(
        "epoch_loss", learning_rate=0.0, shuffle=False, keep_prob_conv=1.0,
        keep_prob_hidden=1.0, ema_decay=0.0)
    trainer.run()
    images, labels = self.dataset.train_images, self.dataset.train_labels
    step_losses = [
        step_lib.loss(trainer.learner.model, images[start:start + 32],
                      labels[start:start + 32]).numpy()
        for start in range(0, len(labels), 32)]
    self.assertLen(step_losses, 11)
    with open(os.path.join(trainer.config.model_dir, "metrics.jsonl")) as f:
      epoch_losses = [record["loss"] for record in map(json.loads, f)
                      if record["kind"] == "epoch"]
    self.assertAllClose(epoch_losses, [np.mean(step_losses)] * 2, rtol=1e-6)

  def test_restart_resumes_exactly_mid_epoch(self):
    # Checkpoints every 5 steps, so that calls end at steps 5, 10, 11, 15...
    straight, straight_lines = self._trainer("straight",
                                             checkpoint_every_steps=5)
    straight.run()
    # A second run is stopped (as by Ctrl-C) after step 15, 4 steps into
    # epoch 2 of 11 steps; a fresh Trainer on the same folder finishes it.
    interrupted, _ = self._trainer("resumed", checkpoint_every_steps=5)
    interrupted.hooks.append(_StopAt(15))
    with self.assertRaises(SystemExit):
      interrupted.run()
    resumed, lines = self._trainer("resumed", checkpoint_every_steps=5)
    resumed.run()
    self.assertIn("at step 15 (epoch 1)", lines[0])
    self.assertEqual(int(resumed.learner.global_step.numpy()), 22)
    for a, b in zip(straight.checkpoint.model.weights,
                    resumed.checkpoint.model.weights):
      self.assertAllClose(a, b, rtol=1e-6, atol=1e-7)
    # The printed line of the resumed epoch averages all 11 of its steps,
    # the 4 before the restart included: the straight run's line.
    self.assertEqual(_loss_lines(lines), _loss_lines(straight_lines)[1:])
    self.assertLen(_loss_lines(lines), 1)

  def test_the_bare_trainer_resumes_from_its_own_checkpoints(self):
    # loop.Trainer on its own: TensorFlow's CheckpointManager (loop.Checkpoints)
    # without the run folder's guard. A stop raises loop.Stopped after saving
    # the step reached; a new Trainer restores the newest ckpt-<step> and
    # finishes as a straight run would. max_to_keep=2 keeps the last two.
    def bare(name, *hooks):
      model_dir = os.path.join(self.get_temp_dir(), name)
      lines = []
      config = _config(model_dir, checkpoint_every_steps=5, max_to_keep=2)
      return loop.Trainer(config, self.dataset, out=lines.append,
                          hooks=hooks), lines, model_dir

    straight, straight_lines, _ = bare("bare_straight")
    straight.run()
    interrupted, _, model_dir = bare("bare_resumed", _StopAt(15))
    with self.assertRaises(loop.Stopped) as stopped:
      interrupted.run()
    self.assertEqual((stopped.exception.reason, stopped.exception.step,
                      stopped.exception.saved), ("SIGINT", 15, True))
    self.assertEqual(str(stopped.exception), "stopped on SIGINT at step 15")
    resumed, lines, _ = bare("bare_resumed")

    class Clock:  # loop.time with a monotonic clock that ticks 1 s a reading.
      def __init__(self):
        self.now, self.time = 0.0, time.time

      def monotonic(self):
        self.now += 1.0
        return self.now

    with mock.patch.object(loop, "time", Clock()):
      resumed.run()
    self.assertEqual(lines[0], f"Resuming from {model_dir}/ckpt-15 at step "
                     "15 (epoch 1).")
    # Its speed counts the 7 steps this process ran (of 32 images), over the
    # epoch's one tick; elapsed: run start, epoch start, epoch end.
    self.assertEqual(resumed.epoch_record["images_per_sec"], 7 * 32)
    progress = [line for line in lines if line.startswith("epoch 2/2  loss")]
    self.assertLen(progress, 1)
    self.assertTrue(progress[0].endswith(
        "  224 images/sec  elapsed 0:00:02  ETA 0:00:00"), progress[0])
    for a, b in zip(straight.learner.model.weights,
                    resumed.learner.model.weights):
      self.assertAllClose(a, b, rtol=1e-6, atol=1e-7)
    self.assertEqual(_loss_lines(lines), _loss_lines(straight_lines)[1:])
    # A new Trainer's restore names the newest checkpoint, now its last good.
    again, _, _ = bare("bare_resumed")
    self.assertEqual(again.checkpoints.restore(), f"{model_dir}/ckpt-22")
    self.assertEqual(again.checkpoints.last_good, f"{model_dir}/ckpt-22")
    state = tf.train.get_checkpoint_state(model_dir)
    self.assertEqual([os.path.basename(path)
                      for path in state.all_model_checkpoint_paths],
                     ["ckpt-20", "ckpt-22"])

  def test_calls_end_at_20_steps_checkpoints_log_points_and_epoch_ends(self):
    # after_step runs after each train_steps call. 330 images in batches of 8
    # are 42 steps (the last of 2 images). Each call runs at most
    # STEPS_PER_CALL = 20 steps and ends where a checkpoint (every 15) or a
    # log point (every 25) falls, as if each step were its own call; the
    # steps below are worked out by hand from those three rules.
    class Steps(loop.Hook):
      def __init__(self):
        self.seen = []

      def after_step(self, trainer, step):
        self.seen.append(step)

    for every, expected in [((0, 0), [20, 40, 42]),
                            ((15, 25), [15, 25, 30, 42])]:
      steps = Steps()
      trainer, _ = self._trainer(
          f"calls_{every[0]}", epochs=1, batch_size=8,
          checkpoint_every_steps=every[0], log_every_steps=every[1])
      trainer.hooks.append(steps)
      trainer.run()
      self.assertEqual(steps.seen, expected, msg=f"every {every}")
      self.assertEqual(int(trainer.learner.global_step.numpy()), 42)

  def test_hooks_hear_each_point_of_the_loop_in_order(self):
    # The Hook protocol of loop.py's docstring, for a run resumed at step 15
    # of 2 epochs of 11 steps, checkpoints every 5, evaluations every epoch.
    class Recorder:  # Any object with some of the methods will do.
      def __init__(self):
        self.calls = []

      def __getattr__(self, name):
        return lambda trainer, *args: self.calls.append((name, *args[:2]))

    first, _ = self._trainer("hooks", checkpoint_every_steps=5)
    first.hooks.append(_StopAt(15))
    with self.assertRaises(SystemExit):
      first.run()
    resumed, _ = self._trainer("hooks", checkpoint_every_steps=5)
    recorder = Recorder()
    resumed.hooks.append(recorder)
    resumed.run()
    self.assertEqual(recorder.calls, [
        ("after_restore", 15), ("begin", 15),
        ("after_step", 20), ("before_save", 20),
        ("after_step", 22), ("before_save", 22),
        ("after_epoch", 1, 22), ("after_evaluate", 1, 22), ("end", 22)])

  def test_a_stop_while_restoring_raises_before_any_step_saving_nothing(self):
    # A signal that lands during the restore: nothing ran, so nothing new is
    # saved, and Stopped says so (saved=False) with the step restored.
    class StopOnRestore(loop.Hook):
      def after_restore(self, trainer, step):
        trainer.stop_reason = "SIGTERM"

    model_dir = os.path.join(self.get_temp_dir(), "stop_on_restore")
    trainer = loop.Trainer(_config(model_dir, epochs=1), self.dataset,
                           out=lambda line: None, hooks=[StopOnRestore()])
    with self.assertRaises(loop.Stopped) as stopped:
      trainer.run()
    self.assertEqual((stopped.exception.reason, stopped.exception.step,
                      stopped.exception.saved), ("SIGTERM", 0, False))
    self.assertEqual(int(trainer.learner.global_step.numpy()), 0)
    self.assertIsNone(tf.train.latest_checkpoint(model_dir))

  def test_a_stop_at_an_epoch_end_stops_there_unless_the_run_is_done(self):
    # A signal during an epoch's end (its save and evaluation, both done):
    # after epoch 0 of 2 the run stops at step 11, saved; after the last
    # epoch there is nothing left to stop, so the run ends as usual.
    class StopAfterEvaluating(loop.Hook):
      def __init__(self, epoch):
        self.epoch = epoch

      def after_evaluate(self, trainer, epoch, step, record):
        if epoch == self.epoch:
          trainer.stop_reason = "SIGINT"

    def bare(name, epoch):
      config = _config(os.path.join(self.get_temp_dir(), name))
      return loop.Trainer(config, self.dataset, out=lambda line: None,
                          hooks=[StopAfterEvaluating(epoch)])

    first = bare("stop_epoch_0", 0)
    with self.assertRaises(loop.Stopped) as stopped:
      first.run()
    self.assertEqual((stopped.exception.step, stopped.exception.saved),
                     (11, True))
    self.assertEqual(int(first.learner.global_step.numpy()), 11)
    last = bare("stop_epoch_1", 1)
    self.assertIsNotNone(last.run())  # The final accuracy, no Stopped.
    self.assertEqual(int(last.learner.global_step.numpy()), 22)

  def test_finished_run_does_nothing_and_says_so(self):
    first, _ = self._trainer("done", epochs=1)
    first.run()
    again, lines = self._trainer("done", epochs=1)
    self.assertIsNone(again.run())
    self.assertEqual(
        lines[-1],
        f"Nothing to do: {again.config.model_dir} already holds a run of 1 "
        "epochs (11 steps), as many as --epochs=1 asks for or more; raise "
        "--epochs to train further.")

  def test_divergence_stops_with_the_step_and_keeps_the_good_checkpoint(self):
    # Huge weights overflow float32 in the second conv: the loss is NaN. (A
    # huge learning rate alone may instead kill every ReLU, leaving a finite
    # loss of log(10).)
    trainer, _ = self._trainer("diverge", init_stddev=1e30, epochs=1)
    with self.assertRaisesRegex(loop.TrainingError, r"at step \d+"):
      trainer.run()
    self.assertIsNone(trainer.checkpoints.manager.latest_checkpoint)


class LearningTest(tf.test.TestCase):

  def test_synthetic_run_learns_far_above_chance(self):
    # This recipe learns slowly at first (weights of stddev 0.01, RMSProp from
    # ones), so give it a few hundred steps.
    dataset = data.synthetic(num_train=4000, num_test=500, seed=0)
    config = _config(os.path.join(self.get_temp_dir(), "learn"), epochs=4,
                     batch_size=32, eval_every=100)
    trainer = guard.GuardedTrainer(config, dataset, out=lambda line: None)
    accuracy = trainer.run()
    self.assertGreater(accuracy, 0.6)  # Chance is 0.1.


class MovingAverageTrainerTest(tf.test.TestCase):

  def test_predict_uses_the_averaged_weights(self):
    dataset = data.synthetic(num_train=64, num_test=32, seed=1)
    trainer = guard.GuardedTrainer(
        _config(os.path.join(self.get_temp_dir(), "ema"), epochs=1,
                learning_rate=0.01), dataset, out=lambda line: None)
    trainer.run()
    averaged = trainer.learner.average_model(
        tf.cast(dataset.test_images, tf.float32) / 255.0)
    self.assertAllEqual(trainer.learner.predict(dataset.test_images),
                        tf.argmax(averaged, axis=1, output_type=tf.int32))
    for raw, average in zip(trainer.learner.model.weights,
                            trainer.learner.average_model.weights):
      self.assertTrue(np.any(raw.numpy() != average.numpy()))

  def test_zero_decay_evaluates_the_raw_weights(self):
    dataset = data.synthetic(num_train=64, num_test=32, seed=1)
    trainer = guard.GuardedTrainer(
        _config(os.path.join(self.get_temp_dir(), "raw"), epochs=1,
                ema_decay=0.0), dataset, out=lambda line: None)
    self.assertIsNone(trainer.learner.average_model)
