"""The training loop: tracing, data order, learning, checkpoints and resume."""

import json
import os

import numpy as np
import tensorflow as tf

from tf_raw import config as config_lib
from tf_raw import data
from tf_raw import loop
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

  def test_finished_run_does_nothing_and_says_so(self):
    first, _ = self._trainer("done", epochs=1)
    first.run()
    again, lines = self._trainer("done", epochs=1)
    self.assertIsNone(again.run())
    self.assertIn("Nothing to do", lines[-1])

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
