"""Augmentation (`--augment=crop_flip`) and the cosine learning rate.

Oracles: a hand-made image whose pixels name their own row and column (so
every output pixel says where it came from), numpy's pad / slice / reverse
on the drawn offsets, and the train step fed images augmented outside it.
"""

import json
import math
import os

import numpy as np
import tensorflow as tf

from tf_raw import augment
from tf_raw import config as config_lib
from tf_raw import data
from tf_raw import optim
from tf_raw import loop
from tf_raw.run_folder import guard
from tf_raw.run_folder import run_dir
from tf_raw.tf1 import train_v1

PAD = augment.PAD


def _step_seed(step, run_seed=0):
  return augment.augment_seed(run_seed, tf.constant(step, tf.int64))


def _position_images(batch_size):
  """uint8 [B, 32, 32, 3]: channel 0 is row + 1, channel 1 is col + 1.

  Channel 2 is the image's index + 1, so a mixed-up batch shows too. No
  pixel is 0, so a 0 in the output can only be padding.
  """
  rows, cols = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
  images = np.zeros([batch_size, 32, 32, 3], np.uint8)
  images[..., 0] = rows + 1
  images[..., 1] = cols + 1
  images[..., 2] = (np.arange(batch_size) + 1)[:, None, None]
  return images


def _numpy_crop_flip(images, offsets, flips):
  """The oracle: pad, slice the window, reverse the columns if flipped."""
  height, width = images.shape[1:3]
  padded = np.pad(images, [(0, 0), (PAD, PAD), (PAD, PAD), (0, 0)])
  out = []
  for image, (dy, dx), flip in zip(padded, offsets, flips):
    window = image[dy:dy + height, dx:dx + width]
    out.append(window[:, ::-1] if flip else window)
  return np.stack(out)


class CropFlipTest(tf.test.TestCase):

  def test_keeps_shape_and_dtype(self):
    for batch_size in (1, 7, 128):
      images = _position_images(batch_size)
      out = augment.crop_flip(images, _step_seed(3))
      self.assertEqual(out.dtype, tf.uint8)
      self.assertEqual(out.shape, images.shape)

  def test_draws_cover_every_offset_and_both_mirrors(self):
    offsets, flips = augment.draw_crop_flip(2000, _step_seed(0))
    offsets, flips = offsets.numpy(), flips.numpy()
    self.assertEqual(offsets.shape, (2000, 2))
    self.assertEqual(flips.shape, (2000,))
    self.assertAllEqual(np.unique(offsets), np.arange(2 * PAD + 1))
    self.assertBetween(flips.mean(), 0.45, 0.55)

  def test_every_pixel_comes_from_where_the_draws_say(self):
    # Hand computation, no slicing: output pixel (i, j) of image b is input
    # pixel (dy + i - PAD, dx + j' - PAD) with j' = 31 - j when mirrored, or
    # a padding zero when that falls outside the image.
    images = _position_images(64)
    seed = _step_seed(11)
    out = augment.crop_flip(images, seed).numpy()
    offsets, flips = (t.numpy() for t in augment.draw_crop_flip(64, seed))
    self.assertTrue(flips.any() and not flips.all())
    for b in range(64):
      dy, dx = offsets[b]
      for i in range(32):
        for j in range(32):
          row = dy + i - PAD
          col = dx + (31 - j if flips[b] else j) - PAD
          inside = 0 <= row < 32 and 0 <= col < 32
          expected = [row + 1, col + 1, b + 1] if inside else [0, 0, 0]
          if tuple(out[b, i, j]) != tuple(expected):
            self.fail(f"image {b} (dy={dy}, dx={dx}, flip={flips[b]}) "
                      f"pixel ({i}, {j}): {out[b, i, j]}, not {expected}")

  def test_known_offsets_and_mirror(self):
    # Find, among the draws of one seed, an image with each extreme window,
    # and check its corners by hand: offset 0 starts 4 rows/cols of zeros
    # early, offset 8 ends 4 late.
    images = _position_images(256)
    seed = _step_seed(5)
    out = augment.crop_flip(images, seed).numpy()
    offsets, flips = (t.numpy() for t in augment.draw_crop_flip(256, seed))
    top_left = np.flatnonzero((offsets[:, 0] == 0) & (offsets[:, 1] == 0)
                              & ~flips)[0]
    self.assertFalse(out[top_left, :PAD].any())      # 4 rows of padding,
    self.assertFalse(out[top_left, :, :PAD].any())   # 4 columns of padding,
    self.assertAllEqual(out[top_left, PAD, PAD], [1, 1, top_left + 1])
    self.assertAllEqual(out[top_left, 31, 31], [28, 28, top_left + 1])
    mirrored = np.flatnonzero((offsets[:, 0] == 2 * PAD)
                              & (offsets[:, 1] == PAD) & flips)[0]
    # Rows 8..39 of the padded image: image rows 4..31, then 4 of zeros;
    # columns centred, right to left.
    self.assertAllEqual(out[mirrored, 0, 0], [5, 32, mirrored + 1])
    self.assertAllEqual(out[mirrored, 0, 31], [5, 1, mirrored + 1])
    self.assertAllEqual(out[mirrored, 27, 0], [32, 32, mirrored + 1])
    self.assertFalse(out[mirrored, 28:].any())

  def test_matches_numpy_on_random_images_of_any_size(self):
    # CIFAR's 32x32, and a non-square size (height and width not mixed up).
    for shape, step in (([128, 32, 32, 3], 42), ([16, 24, 40, 3], 9)):
      images = np.random.default_rng(step).integers(
          0, 256, shape, dtype=np.uint8)
      seed = _step_seed(step)
      offsets, flips = (t.numpy()
                        for t in augment.draw_crop_flip(shape[0], seed))
      self.assertAllEqual(augment.crop_flip(images, seed),
                          _numpy_crop_flip(images, offsets, flips))

  def test_a_replicas_rows_get_those_rows_of_the_whole_batchs_draws(self):
    # Under tf.distribute a replica holds rows first..first + n - 1 of the
    # global batch: it must crop them exactly as one device would.
    images = np.random.default_rng(3).integers(
        0, 256, [12, 32, 32, 3], dtype=np.uint8)
    seed = _step_seed(4)
    whole = augment.crop_flip(images, seed).numpy()
    for first, count in ((0, 5), (5, 7), (11, 1), (12, 0)):
      rows = augment.crop_flip(images[first:first + count], seed,
                               rows=(first, 12))
      self.assertAllEqual(rows, whole[first:first + count])

  def test_a_pure_function_of_seed_and_step(self):
    images = np.random.default_rng(1).integers(
        0, 256, [32, 32, 32, 3], dtype=np.uint8)
    first = augment.crop_flip(images, _step_seed(7)).numpy()
    self.assertAllEqual(first, augment.crop_flip(images, _step_seed(7)))
    self.assertNotAllEqual(first, augment.crop_flip(images, _step_seed(8)))
    self.assertNotAllEqual(first, augment.crop_flip(
        images, _step_seed(7, run_seed=1)))

  def test_draws_differ_from_the_dropout_streams(self):
    # model.py folds 0..4 into (seed, step) for its masks; augmentation
    # folds AUGMENT_STREAM, so its numbers are its own.
    pair = tf.constant([0, 7], tf.int64)
    augment_seed = _step_seed(7).numpy()
    for stream in range(5):
      self.assertNotAllEqual(
          augment_seed,
          tf.random.experimental.stateless_fold_in(pair, stream))

  def test_seeds_are_the_documented_folds_every_recorded_run_used(self):
    # Written out by hand from the module's doc: (run seed, step) folded
    # with 1000, then 0 for the offsets and 1 for the flips. Changing any
    # of these constants changes every augmented run's curve (the README's
    # 0.8016 among them), and offsets drawn from the flips' stream would be
    # correlated with them.
    seed = tf.random.experimental.stateless_fold_in(
        tf.constant([5, 11], tf.int64), 1000)
    self.assertAllEqual(augment.augment_seed(5, tf.constant(11, tf.int64)),
                        seed)
    offsets = tf.random.stateless_uniform(
        [64, 2], tf.random.experimental.stateless_fold_in(seed, 0),
        minval=0, maxval=9, dtype=tf.int32)
    flips = tf.random.stateless_uniform(
        [64], tf.random.experimental.stateless_fold_in(seed, 1),
        minval=0, maxval=2, dtype=tf.int32)
    drawn_offsets, drawn_flips = augment.draw_crop_flip(64, seed)
    self.assertAllEqual(drawn_offsets, offsets)
    self.assertAllEqual(drawn_flips, flips == 1)

  def test_modes_are_the_flag_values_run_folders_record(self):
    # run_config.json stores the value; renaming one would refuse to
    # resume every run folder that recorded it.
    self.assertEqual(augment.MODES, ("none", "crop_flip"))
    self.assertEqual((augment.NONE, augment.CROP_FLIP), augment.MODES)


class CosineRateTest(tf.test.TestCase):

  def test_values(self):
    self.assertAllClose(optim.cosine_rate(0.001, 0, 1000), 0.001)
    self.assertAllClose(optim.cosine_rate(0.001, 500, 1000), 0.0005)
    self.assertAllClose(optim.cosine_rate(0.001, 250, 1000),
                        0.0005 * (1 + math.cos(math.pi / 4)))
    self.assertAllClose(optim.cosine_rate(0.001, 1000, 1000), 0.0)
    self.assertAllClose(optim.cosine_rate(0.001, 5000, 1000), 0.0)
    # Step 0 is exactly the constant rate's float32 value.
    self.assertEqual(optim.cosine_rate(0.001, 0, 1000).numpy(),
                     np.float32(0.001))


def _config(model_dir, **overrides):
  settings = dict(dataset="synthetic", model_dir=model_dir, epochs=2,
                  batch_size=32, checkpoint_every_steps=0, eval_every=1,
                  print_predictions=False)
  settings.update(overrides)
  return config_lib.TrainConfig(**settings)


def _op_types(concrete_function):
  """Every op type in a traced function, its nested loop bodies included."""
  graph_def = concrete_function.graph.as_graph_def()
  nodes = list(graph_def.node)
  for function in graph_def.library.function:
    nodes.extend(function.node_def)
  return {node.op for node in nodes}, {node.name for node in nodes}


class TrainStepTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.dataset = data.synthetic(num_train=330, num_test=64, seed=1)

  def _trainer(self, name, **overrides):
    model_dir = os.path.join(self.get_temp_dir(), name)
    lines = []
    trainer = guard.GuardedTrainer(_config(model_dir, **overrides),
                                   self.dataset, out=lines.append)
    return trainer, lines

  def _batch(self, step):
    start = 32 * step
    return (self.dataset.train_images[start:start + 32],
            self.dataset.train_labels[start:start + 32])

  def test_step_trains_on_the_augmented_uint8_batch(self):
    # The oracle: a trainer without augmentation, fed the batch augmented
    # outside the step with (seed, global step). Same weights, bit for bit.
    augmented, _ = self._trainer("augmented", augment="crop_flip", epochs=0)
    plain, _ = self._trainer("plain", epochs=0)
    for step in range(3):
      images, labels = self._batch(step)
      augmented.learner.train_step(images, labels)
      plain.learner.train_step(augment.crop_flip(images, _step_seed(step)), labels)
    for a, b in zip(augmented.learner.model.weights + augmented.learner.eval_model.weights,
                    plain.learner.model.weights + plain.learner.eval_model.weights):
      self.assertAllEqual(a, b)
    # And it is not a no-op: the unaugmented batches train elsewhere.
    untouched, _ = self._trainer("untouched", epochs=0)
    for step in range(3):
      untouched.learner.train_step(*self._batch(step))
    self.assertNotAllEqual(untouched.learner.model.w_c1, augmented.learner.model.w_c1)

  def test_off_at_evaluation_and_absent_by_default(self):
    augmented, _ = self._trainer("on", augment="crop_flip", epochs=0)
    default, _ = self._trainer("off", epochs=0)
    step_ops, step_names = _op_types(
        augmented.learner.train_step.get_concrete_function())
    self.assertIn("GatherV2", step_ops)
    self.assertTrue(any("crop_flip" in name for name in step_names))
    for trainer in (augmented, default):
      for traced in (trainer.learner.predict, trainer.learner.predict_raw):
        ops, names = _op_types(traced.get_concrete_function())
        self.assertNotIn("GatherV2", ops)
        self.assertFalse(any("crop_flip" in name for name in names))
    # --augment=none, --lr_schedule=constant: the notebook's step, with no
    # gather, no padding, no cosine, no crop_flip scope.
    ops, names = _op_types(default.learner.train_step.get_concrete_function())
    self.assertFalse({"GatherV2", "Pad", "PadV2", "Cos"} & ops, ops)
    self.assertFalse(any("crop_flip" in name for name in names))
    # Evaluation gives the same predictions with or without --augment (the
    # weights are equal before any step).
    images = self.dataset.test_images
    self.assertAllEqual(augmented.learner.predict(images), default.learner.predict(images))

  def test_cosine_step_is_the_constant_step_at_that_rate(self):
    cosine, _ = self._trainer("cosine", lr_schedule="cosine", epochs=2)
    total_steps = 2 * cosine.steps_per_epoch
    step = 7
    rate = float(optim.cosine_rate(0.001, step, total_steps).numpy())
    constant, _ = self._trainer("constant", learning_rate=rate, epochs=2)
    for trainer in (cosine, constant):
      trainer.learner.global_step.assign(step)
      trainer.learner.train_step(*self._batch(0))
    for a, b in zip(cosine.learner.model.weights, constant.learner.model.weights):
      self.assertAllEqual(a, b)
    ops, _ = _op_types(cosine.learner.train_step.get_concrete_function())
    self.assertIn("Cos", ops)

  def test_resume_mid_epoch_with_augment_is_bit_identical(self):
    # As test_loop's resume test, with both new flags on: a run stopped
    # after 15 steps (mid-epoch 2) and resumed by a fresh Trainer ends with
    # the weights, averages and slots of a straight run, bit for bit.
    options = dict(augment="crop_flip", lr_schedule="cosine")
    straight, _ = self._trainer("straight", **options)
    straight.run()
    interrupted, _ = self._trainer("resumed", checkpoint_every_steps=15,
                                   **options)
    images, labels = self.dataset.train_images, self.dataset.train_labels
    for step in range(15):
      epoch, batch = divmod(step, interrupted.steps_per_epoch)
      order = loop.epoch_order(0, epoch, len(labels))[batch * 32:][:32]
      interrupted.learner.train_step(images[order], labels[order])
    interrupted.checkpoints.manager.save(checkpoint_number=15)
    resumed, lines = self._trainer("resumed", **options)
    resumed.run()
    self.assertIn("at step 15 (epoch 1)", lines[0])
    self.assertEqual(int(resumed.learner.global_step.numpy()), 22)
    for a, b in zip(straight.checkpoint.model.weights
                    + straight.checkpoint.average_model.weights
                    + straight.learner.optimizer.mean_squares,
                    resumed.checkpoint.model.weights
                    + resumed.checkpoint.average_model.weights
                    + resumed.learner.optimizer.mean_squares):
      self.assertAllEqual(a, b)


class RunIdentityTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.dataset = data.synthetic(num_train=40, num_test=10, seed=1)

  def _run_folder(self, name, **overrides):
    """A folder holding one (fake) checkpoint and run_config.json."""
    model_dir = os.path.join(self.get_temp_dir(), name)
    os.makedirs(model_dir)
    with open(os.path.join(model_dir, "checkpoint"), "w") as f:
      f.write('model_checkpoint_path: "ckpt-1"\n')
    run_dir.record_identity(
        model_dir, run_dir.run_identity(_config(model_dir, **overrides),
                                        self.dataset))
    return model_dir

  def _check(self, model_dir, **overrides):
    run_dir.check_identity(model_dir, run_dir.run_identity(
        _config(model_dir, **overrides), self.dataset))

  def test_resume_with_another_augment_or_schedule_is_refused(self):
    model_dir = self._run_folder("aug", augment="crop_flip")
    self._check(model_dir, augment="crop_flip")
    with self.assertRaisesRegex(run_dir.RunDirError,
                                "--augment=crop_flip there, none now"):
      self._check(model_dir)
    model_dir = self._run_folder("cos", lr_schedule="cosine", epochs=2)
    with self.assertRaisesRegex(run_dir.RunDirError,
                                "--lr_schedule=cosine there, constant now"):
      self._check(model_dir, epochs=2)
    # The cosine's length is the run's steps: --epochs may not change.
    with self.assertRaisesRegex(run_dir.RunDirError, "--epochs=2 there, 3 now"):
      self._check(model_dir, lr_schedule="cosine", epochs=3)

  def test_constant_rate_runs_may_still_extend_epochs(self):
    model_dir = self._run_folder("extend", epochs=2)
    self._check(model_dir, epochs=3)

  def test_run_config_from_before_the_flags_means_their_defaults(self):
    model_dir = self._run_folder("old")
    path = os.path.join(model_dir, run_dir.RUN_CONFIG_FILE)
    with open(path) as f:
      saved = json.load(f)
    del saved["identity"]["augment"], saved["identity"]["lr_schedule"]
    with open(path, "w") as f:
      json.dump(saved, f)
    self._check(model_dir)
    with self.assertRaisesRegex(run_dir.RunDirError, "--augment=none there"):
      self._check(model_dir, augment="crop_flip")


class TF1ApiTest(tf.test.TestCase):

  def test_v1_refuses_the_new_flags_in_one_sentence(self):
    dataset = data.synthetic(num_train=40, num_test=10, seed=1)
    for options in (dict(augment="crop_flip"), dict(lr_schedule="cosine")):
      config = _config(self.get_temp_dir(), api="v1", **options)
      with self.assertRaisesRegex(
          loop.TrainingError,
          r"^--api=v1 trains the notebook's TF1 graph, which has no "
          r"--augment or --lr_schedule; .*--api=v2\.$"):
        train_v1.check(config, dataset)
