"""SavedModel export and prediction: tf_raw/serving.py, export.py, predict.py.

One tiny run on a 3-class image folder is trained once; the exported model is
compared with the in-memory network (a numpy softmax of its logits), and the
programs are run in-process (tests/program_fixtures.py) on real image files.
"""

import contextlib
import io
import os

import numpy as np
import tensorflow as tf

from tests import image_fixtures
from tests import program_fixtures
from tf_raw import config as config_lib
from tf_raw.tools import export
from tf_raw.sources import image_folder
from tf_raw import model as model_lib
from tf_raw.tools import predict
from tf_raw.run_folder import run_files
from tf_raw.tools import serving
from tf_raw.run_folder import guard


def _softmax(logits):
  shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
  return shifted / shifted.sum(axis=1, keepdims=True)


class ExportPredictTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = os.path.join(tf.compat.v1.test.get_temp_dir(), "serving")
    image_fixtures.write_image_folder(os.path.join(cls.root, "images"),
                                      per_class=4)
    cls.dataset = image_folder.load(os.path.join(cls.root, "images"),
                                    cache_dir=None)
    cls.model_dir = os.path.join(cls.root, "run")
    config = config_lib.TrainConfig(
        model_dir=cls.model_dir, epochs=1, batch_size=4, eval_every=1,
        checkpoint_every_steps=0, print_predictions=False,
        init_stddev=0.1)  # Larger weights: distinct probabilities.
    cls.trainer = guard.GuardedTrainer(config, cls.dataset, out=lambda line: None)
    cls.trainer.run()
    run_files.write_class_names(cls.model_dir, cls.dataset.class_names)
    cls.export_dir = os.path.join(cls.root, "exports", "1")
    serving.export_saved_model(cls.model_dir, cls.export_dir)

  def _in_memory_probabilities(self, images_uint8):
    logits = self.trainer.learner.eval_model(
        model_lib.scale_images(images_uint8)).numpy()
    return _softmax(logits.astype(np.float64))

  def test_saved_model_matches_the_in_memory_model(self):
    self.assertEqual(self.trainer.learner.model.w_o.shape, (625, 3))
    loaded = tf.saved_model.load(self.export_dir)
    images = np.concatenate([self.dataset.test_images,
                             self.dataset.train_images])
    outputs = loaded.signatures["serving_default"](images=images)
    self.assertEqual(set(outputs), {"class_ids", "probabilities"})
    expected = self._in_memory_probabilities(images)
    self.assertAllClose(outputs["probabilities"], expected, rtol=1e-5,
                        atol=1e-6)
    self.assertAllEqual(outputs["class_ids"],
                        self.trainer.learner.predict(images).numpy())
    self.assertEqual(tuple(loaded.class_names.numpy().astype(str)),
                     image_fixtures.CLASSES)
    with open(os.path.join(self.export_dir, "assets",
                           run_files.CLASS_NAMES_FILE)) as f:
      self.assertEqual(f.read(), "cat\ndog\nfrog\n")

  def test_saved_model_cli_shows_the_signature(self):
    # What `saved_model_cli show --dir=... --all` prints, without a process.
    from tensorflow.python.tools import saved_model_cli  # pylint: disable=g-import-not-at-top
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
      saved_model_cli._show_all(self.export_dir)  # pylint: disable=protected-access
    text = shown.getvalue()
    signature = text[text.index("signature_def['serving_default']"):]
    for expected in ("inputs['images'] tensor_info:", "dtype: DT_UINT8",
                     "shape: (-1, 32, 32, 3)", "outputs['class_ids']",
                     "dtype: DT_INT32", "outputs['probabilities']",
                     "shape: (-1, 3)"):
      self.assertIn(expected, signature)

  def test_export_refuses_to_overwrite_and_needs_a_checkpoint(self):
    with self.assertRaisesRegex(serving.ServingError, "exists already"):
      serving.export_saved_model(self.model_dir, self.export_dir)
    empty = os.path.join(self.root, "empty_run")
    os.makedirs(empty)
    code, _, stderr = program_fixtures.run_program(
        export, [f"--model_dir={empty}",
                 f"--export_dir={os.path.join(self.root, 'never')}"])
    self.assertEqual(code, 1)
    self.assertRegex(stderr, r"^error: Found no checkpoint in .*; train first")
    self.assertEqual(stderr.count("\n"), 1)
    self.assertFalse(os.path.exists(os.path.join(self.root, "never")))
    self.assertEqual([name for name in os.listdir(self.root)
                      if name.startswith(".")], [])  # No staging folders.

  def test_export_program_writes_a_loadable_model(self):
    target = os.path.join(self.root, "exports", "cli")
    code, stdout, _ = program_fixtures.run_program(
        export, [f"--model_dir={self.model_dir}", f"--export_dir={target}"])
    self.assertEqual(code, 0)
    self.assertIn("signature 'serving_default'", stdout)
    self.assertTrue(tf.saved_model.contains_saved_model(target))

  def test_predict_prints_top3_and_reports_each_bad_file(self):
    folder = os.path.join(self.root, "to_predict")
    image = self.dataset.test_images[0]
    png, jpeg = os.path.join(folder, "a.png"), os.path.join(folder, "b.jpg")
    image_fixtures.write_image(png, image)
    # A 64x64 JPEG: predict decodes and resizes it like the folder loader.
    image_fixtures.write_image(jpeg, np.kron(image, np.ones((2, 2, 1),
                                                            np.uint8)),
                               tf.io.encode_jpeg)
    text_file = os.path.join(folder, "notes.txt")
    with open(text_file, "w") as f:
      f.write("not an image")
    missing = os.path.join(folder, "missing.png")
    args = [f"--image={path}" for path in (png, text_file, jpeg, missing)]

    code, stdout, stderr = program_fixtures.run_program(
        predict, [f"--model_dir={self.model_dir}", *args])
    self.assertEqual(code, 1)
    lines = stdout.splitlines()
    self.assertEqual([line.split(":")[0] for line in lines], [png, jpeg])
    probabilities = self._in_memory_probabilities(image[None])[0]
    best = np.argsort(-probabilities)[:3]
    self.assertEqual(lines[0], f"{png}: " + ", ".join(
        f"{image_fixtures.CLASSES[k]} {probabilities[k]:.3f}" for k in best))
    errors = stderr.splitlines()
    self.assertRegex(errors[0], r"notes\.txt is not an image TensorFlow can "
                     "decode")
    self.assertRegex(errors[1], r"cannot read .*missing\.png: No such file")
    self.assertEqual(errors[2], "error: 2 of 4 images could not be classified.")

    # The SavedModel gives the same answers.
    code, saved_stdout, _ = program_fixtures.run_program(
        predict, [f"--saved_model={self.export_dir}", f"--image={png}",
                  f"--image={jpeg}"])
    self.assertEqual(code, 0)
    self.assertEqual(saved_stdout, stdout)
