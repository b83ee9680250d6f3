"""The notebook's own TF1 graph (tf_raw/tf1_graph.py) as the oracle of the TF2 code.

Training parity, measured on the 2-core AMD development machine (TF 2.21, CPU):
the TF2 train step (`Trainer.train_step`) and the TF1 graph (`Session.run` of
`RMSPropOptimizer.minimize`) give bit-identical losses at every step, and
bit-identical weights and RMSProp slots after 50 steps, with oneDNN ON and
with oneDNN OFF. TensorFlow reads TF_ENABLE_ONEDNN_OPTS once at start-up, so
one process can only test one setting, with both APIs inside it: this file
tests the setting `make test` runs under (tf_raw turns oneDNN on unless the
variable is set), and tests/test_tf1_programs.py runs `python -m
tf_raw.tf1.compare --tolerance=0` in a subprocess under the other setting.

Why bit-identical is the right bar (the brief allows 1e-6): both sides run the
same kernels (Conv2D, MatMul, their gradients, ResourceApplyRMSProp) on the
same inputs in the same order, so any difference at all means the two graphs
compute something different. That is how we found that Grappler rewrites the
TF2 step's `images / 255.0` as `images * (1 / 255)` (one ulp off for half the
pixel values, enough for ~1e-9 weight differences after 50 steps); the TF1
side is now fed what the TF2 graph computes (see `tf1_graph.to_float_images`).
The 1e-6 bound is asserted first, so a failure shows its size.

Dropout cannot match draw for draw: TF1's dropout is stateful (each run of the
graph advances a hidden random state), the TF2 code's is stateless and keyed
by (seed, step) so that a resumed run redraws the same masks. What must match
is the law: the keep fraction and the 1/keep_prob scaling, tested here on the
real layers of both models.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from tf_raw import config as config_lib
from tf_raw import data
from tf_raw import model as model_lib
from tf_raw.tf1 import parity
from tf_raw.tf1 import tf1_graph
from tf_raw.tf1 import train_v1
from tf_raw import loop

PARITY_STEPS = 50
BOUND = 1e-6  # The largest difference the brief allows.
DROPOUT_LAYERS = ("conv1", "conv2", "conv3", "flat", "hidden")


def _config(model_dir, **overrides):
  settings = dict(dataset="synthetic", model_dir=model_dir, batch_size=16,
                  keep_prob_conv=1.0, keep_prob_hidden=1.0,
                  checkpoint_every_steps=0, print_predictions=False)
  settings.update(overrides)
  return config_lib.TrainConfig(**settings)


def _tf2_dropout_layers(net, keep_prob_conv, keep_prob_hidden):
  """A function returning (before, after) of each of the model's dropouts.

  Traces the real `ConvNet.__call__` once (tf.compat.v1.wrap_function) and
  prunes the graph to fetch each dropout's input and output: the model's
  dropout ends in a multiply by the mask, named "dropout".
  """
  wrapped = tf.compat.v1.wrap_function(
      lambda images, seed: net(images, keep_prob_conv, keep_prob_hidden,
                               seed),
      [tf.TensorSpec([None, 32, 32, 3], tf.float32),
       tf.TensorSpec([2], tf.int64)])
  outputs = [op for op in wrapped.graph.get_operations()
             if op.type == "Mul" and op.name.startswith("dropout")]
  assert len(outputs) == len(DROPOUT_LAYERS), [op.name for op in outputs]
  fetches = []
  for output in outputs:
    fetches += [output.inputs[0], output.outputs[0]]
  pruned = wrapped.prune(feeds=wrapped.inputs, fetches=fetches)

  def layers(images, step):
    values = [t.numpy() for t in pruned(tf.constant(images),
                                        tf.constant([0, step], tf.int64))]
    return dict(zip(DROPOUT_LAYERS, zip(values[::2], values[1::2])))
  return layers


def _tf1_dropout_layers(graph, images, keep_prob_conv, keep_prob_hidden):
  """(before, after) of each dropout of the TF1 graph, for one run."""
  return graph.session.run(graph.layers, {
      graph.X: images, graph.p_keep_conv: keep_prob_conv,
      graph.p_keep_hidden: keep_prob_hidden})


class TrainStepParityTest(tf.test.TestCase):
  """50 steps of both APIs from the same start, then their states compared."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    # 100 images in batches of 8: 13 steps an epoch, the last one of 4
    # images, shuffled per epoch; 50 steps cross three epoch boundaries.
    cls.dataset = data.synthetic(num_train=100, num_test=300, seed=1)
    config = _config(os.path.join(tf.compat.v1.test.get_temp_dir(), "parity"),
                     batch_size=8)
    cls.trainer = loop.Trainer(config, cls.dataset, out=lambda line: None)
    cls.initial = [w.numpy() for w in cls.trainer.learner.model.weights]
    cls.notebook = tf1_graph.TF1Graph(cls.initial)
    cls.losses_tf2, cls.losses_tf1 = [], []
    for step in range(PARITY_STEPS):
      epoch, batch = divmod(step, cls.trainer.steps_per_epoch)
      order = loop.epoch_order(config.seed, epoch, 100)
      index = order[batch * 8:(batch + 1) * 8]
      images = cls.dataset.train_images[index]
      labels = cls.dataset.train_labels[index]
      cls.losses_tf2.append(cls.trainer.learner.train_step(images, labels).numpy())
      cls.losses_tf1.append(cls.notebook.train_step(images, labels, 1.0, 1.0))

  @classmethod
  def tearDownClass(cls):
    cls.notebook.close()
    super().tearDownClass()

  def test_losses_match_bit_for_bit_at_every_step(self):
    self.assertLen(self.losses_tf2, PARITY_STEPS)
    losses_tf2 = np.array(self.losses_tf2, np.float32)
    losses_tf1 = np.array(self.losses_tf1, np.float32)
    self.assertLessEqual(np.max(np.abs(losses_tf2 - losses_tf1)), BOUND)
    self.assertAllEqual(losses_tf2, losses_tf1)

  def test_weights_and_slots_match_bit_for_bit_after_fifty_steps(self):
    slots = self.notebook.slots()
    pairs = (list(zip(self.trainer.learner.model.weights, self.notebook.weights())) +
             list(zip(self.trainer.learner.optimizer.mean_squares, slots["rms"])) +
             list(zip(self.trainer.learner.optimizer.moments, slots["momentum"])))
    self.assertLen(pairs, 15)
    for ours, theirs in pairs:
      self.assertLessEqual(np.max(np.abs(ours.numpy() - theirs)), BOUND)
      self.assertAllEqual(ours, theirs)
    # Something happened: every weight moved, the slots left ones and zeros.
    for before, after in zip(self.initial, self.notebook.weights()):
      self.assertTrue(np.any(before != after))
    self.assertNotAllClose(slots["rms"][4], np.ones_like(slots["rms"][4]))
    self.assertNotAllClose(slots["momentum"][0],
                           np.zeros_like(slots["momentum"][0]))

  def test_same_weights_give_the_same_test_predictions(self):
    # The trained weights of both sides are equal (see above); now compare
    # inference: Trainer.evaluate's batched tf.function against the
    # notebook's predict_op on all test images in one batch. Raw weights on
    # both sides: Trainer.evaluate's default, learner.predict, uses the
    # moving average (--ema_decay 0.999 here), which the TF1 graph lacks.
    _, _, predictions_tf2 = self.trainer.evaluate(
        self.trainer.learner.predict_raw)
    predictions_tf1 = self.notebook.predict(self.dataset.test_images)
    self.assertAllEqual(predictions_tf2, predictions_tf1)
    self.assertAllEqual(
        predictions_tf1,
        self.notebook.predict(self.dataset.test_images, batch_size=128))
    logits_tf2 = tf.function(lambda x: self.trainer.learner.model(
        model_lib.scale_images(x)))(self.dataset.test_images)
    self.assertAllEqual(logits_tf2,
                        self.notebook.logits(self.dataset.test_images))
    self.assertGreaterEqual(len(np.unique(predictions_tf1)), 2)

  def test_tf1_inputs_are_what_the_tf2_graph_computes(self):
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    in_graph = tf.function(model_lib.scale_images)(tf.constant(pixels))
    self.assertAllEqual(tf1_graph.to_float_images(pixels), in_graph)
    # The trap this avoids: eagerly, x / 255 is a true division, and inside a
    # tf.function Grappler turns it into x * (1 / 255): not the same floats.
    eager = model_lib.scale_images(tf.constant(pixels))
    self.assertAllEqual(eager, pixels.astype(np.float32) / np.float32(255))
    self.assertNotAllEqual(eager, in_graph)
    self.assertAllClose(eager, in_graph, rtol=1e-7, atol=0)


class CompareTest(tf.test.TestCase):

  def test_compare_sets_raw_weights_beside_raw_weights(self):
    # `python -m tf_raw.tf1.compare` with the default --ema_decay (0.999):
    # the TF1 graph has no moving average, so the TF2 side must predict with
    # its raw weights. After 40 steps the moving average already predicts
    # some test images differently, so comparing it would not agree.
    recipe = _config(self.get_temp_dir(), learning_rate=0.01)
    self.assertEqual(recipe.ema_decay, config_lib.TrainConfig().ema_decay)
    lines = []
    summary = parity.run(
        config_lib.CompareConfig(train=recipe, steps=40, tolerance=0.0),
        data.synthetic(num_train=128, num_test=500, seed=2), out=lines.append)
    self.assertEqual(summary["predictions_agree"], 1.0)
    self.assertIn("Test predictions (raw weights on both sides): 500 of 500 "
                  "agree.", lines)
    self.assertGreater(summary["moving_average_differs"], 0)
    self.assertEqual(lines[-1], "The two implementations agree at all 40 "
                     "steps: bit-identical.")


class DropoutTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    dataset = data.synthetic(num_train=32, num_test=1, seed=2)
    cls.images = tf1_graph.to_float_images(dataset.train_images)
    cls.net = model_lib.ConvNet(seed=0)
    cls.notebook = tf1_graph.TF1Graph([w.numpy() for w in cls.net.weights],
                                      seed=7)

  @classmethod
  def tearDownClass(cls):
    cls.notebook.close()
    super().tearDownClass()

  def _check_keep_law(self, draws, keep_probs):
    """Pooled over draws: keep fraction within 5 sigma, exact 1/p scaling."""
    for layer in DROPOUT_LAYERS:
      keep = keep_probs[layer]
      kept = total = 0
      for layers in draws:
        before, after = layers[layer]
        live = before != 0  # A zero in is a zero out, dropped or not.
        self.assertAllEqual(after[~live], np.zeros_like(after[~live]))
        survivors = after[live] != 0
        kept += int(survivors.sum())
        total += int(live.sum())
        # A kept value is scaled by 1/keep_prob: TF1 divides by keep_prob
        # (float32), TF2 multiplies by float32(1/keep_prob); both within an
        # ulp or two of the exact ratio.
        self.assertAllClose(after[live][survivors] / before[live][survivors],
                            np.full(int(survivors.sum()), 1 / keep),
                            rtol=3e-7, atol=0)
      # Binomial: the kept fraction of `total` live values has standard
      # deviation sqrt(p (1 - p) / total); 5 sigma fails by chance with
      # probability 6e-7, and the seeds are fixed, so this never flakes.
      sigma = np.sqrt(keep * (1 - keep) / total)
      self.assertGreater(total, 20_000, layer)
      self.assertAllClose(kept / total, keep, atol=5 * sigma, rtol=0,
                          msg=f"{layer}: {total} live values")

  def test_keep_fraction_and_scaling_match_the_keep_probabilities(self):
    keep_probs = dict(conv1=0.8, conv2=0.8, conv3=0.8, flat=0.8, hidden=0.5)
    tf2_layers = _tf2_dropout_layers(self.net, 0.8, 0.5)
    self._check_keep_law([tf2_layers(self.images, step)
                          for step in range(4)], keep_probs)
    self._check_keep_law([_tf1_dropout_layers(self.notebook, self.images,
                                              0.8, 0.5) for _ in range(4)],
                         keep_probs)

  def test_other_keep_probabilities_too(self):
    # keep_prob, not rate: 0.3 must keep 30 %, in both APIs.
    keep_probs = dict.fromkeys(DROPOUT_LAYERS, 0.3)
    keep_probs["hidden"] = 0.9
    tf2_layers = _tf2_dropout_layers(self.net, 0.3, 0.9)
    self._check_keep_law([tf2_layers(self.images, step)
                          for step in range(4)], keep_probs)
    self._check_keep_law([_tf1_dropout_layers(self.notebook, self.images,
                                              0.3, 0.9) for _ in range(4)],
                         keep_probs)

  def test_tf1_masks_are_stateful_and_tf2_masks_are_keyed_by_step(self):
    def mask(layers):
      return layers["conv1"][1] != 0

    tf2_layers = _tf2_dropout_layers(self.net, 0.8, 0.5)
    step_3 = mask(tf2_layers(self.images, 3))
    self.assertAllEqual(step_3, mask(tf2_layers(self.images, 3)))  # Replay.
    self.assertNotAllEqual(step_3, mask(tf2_layers(self.images, 4)))

    # TF1: each run of the graph draws the next masks from the op's hidden
    # random state (the graph seed fixes the sequence); there is no step to
    # hand it, so a resumed TF1 run cannot redraw the masks it would have.
    run_1 = mask(_tf1_dropout_layers(self.notebook, self.images, 0.8, 0.5))
    run_2 = mask(_tf1_dropout_layers(self.notebook, self.images, 0.8, 0.5))
    self.assertNotAllEqual(run_1, run_2)

    # So the two APIs' masks are independent draws: they agree on about
    # p^2 + (1 - p)^2 = 68 % of the values, not on all of them.
    live = tf2_layers(self.images, 3)["conv1"][0] != 0
    agreement = np.mean(step_3[live] == run_1[live])
    self.assertAllClose(agreement, 0.8**2 + 0.2**2, atol=0.01)


class TrainV1LoopTest(tf.test.TestCase):

  def test_v1_loop_prints_what_the_v2_loop_prints_without_dropout(self):
    dataset = data.synthetic(num_train=40, num_test=50, seed=4)
    lines = {}
    for api in ("v2", "v1"):
      # ema_decay=0: both evaluate the raw weights (v1 keeps no average).
      config = _config(os.path.join(self.get_temp_dir(), api), api=api,
                       epochs=2, eval_every=1, print_predictions=True,
                       ema_decay=0.0)
      os.makedirs(config.model_dir, exist_ok=True)
      lines[api] = []
      if api == "v1":
        train_v1.run(config, dataset, out=lines[api].append)
      else:
        loop.Trainer(config, dataset, out=lines[api].append).run()

    # v1 first lists the flags it ignores, then prints the same lines as v2,
    # the same numbers included (dropout off: the runs are bit-identical);
    # only the speed and times in the progress lines differ.
    self.assertStartsWith(lines["v1"][0], "--api=v1 runs the notebook's")
    self.assertIn("--checkpoint_every_steps", lines["v1"][0])
    self.assertNotIn("--batch_size", lines["v1"][0])

    def timeless(line):
      return line.split(" images/sec")[0].rsplit("  ", 1)[0] + " ..." if (
          "images/sec" in line) else line
    self.assertEqual([timeless(line) for line in lines["v1"][1:]],
                     [timeless(line) for line in lines["v2"]])
    self.assertRegex(lines["v1"][1], r"^epoch 1/2  loss \d\.\d{4}  [\d,]+ "
                     r"images/sec  elapsed \d+:\d\d:\d\d  ETA \d+:\d\d:\d\d$")
    self.assertStartsWith(lines["v1"][-1], "Final accuracy : ")

  def test_every_flag_is_either_used_or_reported_ignored(self):
    config = config_lib.TrainConfig()
    fields = {field.name for field in dataclasses.fields(config)}
    ignored = set(train_v1.ignored_flags(config))
    self.assertEqual(ignored, fields - train_v1.USED_FIELDS)
    self.assertContainsSubset({"checkpoint_every_steps", "max_to_keep"},
                              ignored)
    self.assertContainsSubset(
        {"dataset", "batch_size", "keep_prob_conv", "seed", "shuffle"},
        fields - ignored)


if __name__ == "__main__":
  tf.test.main()
