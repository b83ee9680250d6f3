"""TensorBoard events of a run, read back with TF's own Event proto.

One tiny run (6 steps per epoch, 2 epochs, scalars every 4 steps) is read
back record by record; each value is checked against what the test saw
independently: the per-step losses (recorded around the train step), the
metrics.jsonl accuracies, numpy histograms of the final weights and the
enlarged first training image.
"""

import collections
import glob
import json
import os

import numpy as np
import tensorflow as tf

from tests import image_fixtures
from tf_raw import config as config_lib
from tf_raw import data
from tf_raw.tools import summaries
from tf_raw.run_folder import guard

Record = collections.namedtuple("Record", "step plugin value")


def read_events(run_folder):
  """{tag: [Record]} from every event file in run_folder."""
  tags = collections.defaultdict(list)
  for path in sorted(glob.glob(os.path.join(run_folder, "events.out.*"))):
    for serialized in tf.data.TFRecordDataset(path):
      event = tf.compat.v1.Event.FromString(serialized.numpy())
      for value in event.summary.value:
        tags[value.tag].append(Record(
            event.step, value.metadata.plugin_data.plugin_name,
            tf.make_ndarray(value.tensor)))
  return tags


class TensorBoardTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.model_dir = os.path.join(tf.compat.v1.test.get_temp_dir(), "tb")
    cls.dataset = data.synthetic(num_train=96, num_test=40, seed=3)
    config = config_lib.TrainConfig(
        dataset="synthetic", model_dir=cls.model_dir, epochs=2, batch_size=16,
        checkpoint_every_steps=0, eval_every=1, print_predictions=False,
        log_every_steps=4)
    cls.trainer = guard.GuardedTrainer(
        config, cls.dataset, out=lambda line: None,
        hooks=[summaries.TensorBoard(cls.model_dir, config.log_every_steps)])
    # Record every step's loss (a host sync per step: fine in a test).
    cls.step_losses = []
    trainer = cls.trainer

    def recording_batches(order, first_batch, num_batches):
      # One traced step per batch from the host, instead of one call for
      # several steps, so each step's loss can be read.
      size = config.batch_size
      for batch in range(first_batch, first_batch + num_batches):
        index = order[batch * size:(batch + 1) * size]
        loss = trainer.learner.train_step(cls.dataset.train_images[index],
                                  cls.dataset.train_labels[index])
        cls.step_losses.append(float(loss.numpy()))
    trainer.train_batches = recording_batches
    trainer.run()
    del trainer.train_batches
    cls.train = read_events(os.path.join(cls.model_dir, "train"))
    cls.test = read_events(os.path.join(cls.model_dir, "test"))

  def test_tags_and_plugins(self):
    expected = {"loss": "scalars", "images_per_sec": "scalars",
                "learning_rate": "scalars", "accuracy": "scalars",
                "samples": "images", "train_step": "graph_run_metadata_graph"}
    for name in ("w_c1", "w_c2", "w_c3", "w_fc", "w_o"):
      expected[f"weights/{name}"] = "histograms"
      expected[f"gradients/{name}"] = "histograms"
    self.assertEqual({tag: records[0].plugin
                      for tag, records in self.train.items()}, expected)
    self.assertEqual(set(self.test), {"accuracy"})

  def test_loss_is_the_mean_since_the_previous_point(self):
    # 6 steps per epoch, every 4 steps: points at 4, 6 (epoch end), 8, 12.
    # The window restarts with each epoch: step 8 covers steps 7 and 8.
    losses = self.step_losses
    self.assertLen(losses, 12)
    windows = {4: losses[0:4], 6: losses[4:6], 8: losses[6:8],
               12: losses[8:12]}
    records = self.train["loss"]
    self.assertEqual([r.step for r in records], sorted(windows))
    for record in records:
      self.assertAllClose(record.value, np.mean(windows[record.step]),
                          rtol=1e-6)
    self.assertEqual([r.step for r in self.train["images_per_sec"]],
                     [4, 6, 8, 12])
    self.assertTrue(all(r.value > 0 for r in self.train["images_per_sec"]))
    self.assertAllClose([r.value for r in self.train["learning_rate"]],
                        [0.001] * 4)

  def test_accuracies(self):
    with open(os.path.join(self.model_dir, "metrics.jsonl")) as f:
      metrics = [json.loads(line) for line in f]
    metrics = [m for m in metrics if m["kind"] == "evaluation"]
    self.assertEqual([(r.step, float(r.value)) for r in self.test["accuracy"]],
                     [(m["step"], np.float32(m["accuracy"])) for m in metrics])
    predictions = self.trainer.learner.predict(self.dataset.train_images).numpy()
    train_accuracy = np.mean(predictions == self.dataset.train_labels)
    last = self.train["accuracy"][-1]
    self.assertEqual(last.step, 12)
    self.assertAllClose(last.value, train_accuracy)

  def test_weight_and_gradient_histograms_once_per_epoch(self):
    final = self.trainer.learner.model.w_c1.numpy().ravel()
    records = self.train["weights/w_c1"]
    self.assertEqual([r.step for r in records], [6, 12])
    table = records[-1].value  # [buckets, 3]: left edge, right edge, count.
    self.assertEqual(table.shape, (summaries.HISTOGRAM_BUCKETS, 3))
    self.assertEqual(table[:, 2].sum(), final.size)  # 3*3*3*32 = 864.
    self.assertAllClose([table[0, 0], table[-1, 1]], [final.min(), final.max()])
    self.assertAllEqual(table[1:, 0], table[:-1, 1])  # Buckets touch.
    gradient = self.train["gradients/w_o"][-1].value
    self.assertEqual(gradient[:, 2].sum(), 625 * 10)
    self.assertLess(gradient[0, 0], gradient[-1, 1])  # Not all equal.

  def test_samples_grid_shows_the_first_training_image(self):
    width, height, png = self.train["samples"][0].value
    grid = tf.io.decode_png(png).numpy()
    self.assertEqual(grid.shape, (int(height), int(width), 3))
    top, left = image_fixtures.grid_tile_origin(0, summaries.GRID_COLUMNS)
    enlarged = np.kron(self.dataset.train_images[0],
                       np.ones((4, 4, 1), np.uint8))  # Independent of repeat.
    self.assertAllEqual(grid[top:top + 128, left:left + 128], enlarged)

  def test_graph_of_the_train_step_and_no_retracing(self):
    run_metadata = tf.compat.v1.RunMetadata.FromString(
        self.train["train_step"][0].value.item())
    ops = {node.op for graph in run_metadata.function_graphs
           for node in graph.pre_optimization_graph.node}
    self.assertIn("ResourceApplyRMSProp", ops)
    self.assertEqual(self.trainer.learner.train_step.experimental_get_tracing_count(),
                     1)
