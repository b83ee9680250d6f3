"""From a training checkpoint to predictions: restore, classify, export.

    classifier = serving.restore_classifier(model_dir)   # latest checkpoint
    outputs = classifier.serve(images_uint8)  # {"class_ids", "probabilities"}
    serving.export_saved_model(model_dir, export_dir)    # a SavedModel

The exported SavedModel has one signature, `serving_default`:

    inputs:  images         uint8 [None, 32, 32, 3]   RGB, 0..255
    outputs: class_ids      int32 [None]              argmax of the logits
             probabilities  float32 [None, num_classes]   softmax of the logits

The preprocessing (uint8 -> float32 in [0, 1], as in training) is inside it,
and dropout is off. It computes in the run's precision (run_config.json's
`precision`: a mixed_bfloat16 run serves with bfloat16 layers), while its
variables stay float32 and its probabilities are float32 either way. The class names travel with it: as the string variable
`class_names` (`tf.saved_model.load(dir).class_names.numpy()`) and as the
asset file `assets/class_names.txt` for readers without Python.

This is the TF2 replacement for the TF1 notebook's `sess.run(predict_op, ...)`
and for `tf.compat.v1.saved_model.simple_save`: a `tf.Module` whose
`tf.function` has an input signature, saved with `tf.saved_model.save`.
"""

import os
import shutil
import sys
import tempfile

import tensorflow as tf

from tf_raw import data
from tf_raw import model as model_lib
from tf_raw.run_folder import checkpoints
from tf_raw.run_folder import run_dir
from tf_raw.run_folder import run_files

SIGNATURE_KEY = "serving_default"  # The key TF Serving and saved_model_cli use.
_OUTPUT_WEIGHT_KEY = "model/w_o/.ATTRIBUTES/VARIABLE_VALUE"  # In a checkpoint.


class ServingError(Exception):
  """Cannot restore or export; str(e) says what to do, in one sentence."""


class Classifier(tf.Module):
  """The trained network, dropout off, behind a uint8-images signature."""

  def __init__(self, model, class_names):
    """Args:
      model: a `model.ConvNet` holding trained weights.
      class_names: sequence of str, one per output of the model.
    """
    super().__init__(name="classifier")
    assert len(class_names) == model.num_classes, (class_names, model)
    self.model = model
    # A variable, not a Python list: tf.saved_model.save keeps variables.
    self.class_names = tf.Variable(list(class_names), trainable=False,
                                   name="class_names")

  @tf.function(input_signature=[
      tf.TensorSpec([None, *model_lib.IMAGE_SHAPE], tf.uint8, name="images")])
  def serve(self, images):
    """Classifies uint8 [B, 32, 32, 3] RGB images.

    Returns:
      {"class_ids": int32 [B], "probabilities": float32 [B, num_classes]}.
    """
    logits = self.model(model_lib.scale_images(images))  # (B, num_classes)
    return {"class_ids": tf.argmax(logits, axis=1, output_type=tf.int32),
            "probabilities": tf.nn.softmax(logits)}


def restore_classifier(model_dir, out=None):
  """Builds a `Classifier` from the newest usable checkpoint in model_dir.

  The same restore path as training (`checkpoints.restore_newest`): a
  damaged, truncated or unindexed newest checkpoint is reported on `out` and
  skipped for the one before it. The number of classes comes from the
  checkpoint (the shape of w_o), the names from model_dir/class_names.txt (a
  run that predates that file and has 10 classes gets CIFAR-10's names).
  `classifier.checkpoint_prefix` says which checkpoint it holds.

  Args:
    model_dir: a run folder of `python -m tf_raw.train`.
    out: where skipped checkpoints are reported (default: stderr).

  Raises:
    ServingError: no checkpoint, none usable, or one this network cannot read.
  """
  out = out or (lambda line: print(line, file=sys.stderr))
  model_dir = os.path.expanduser(model_dir)
  prefixes = checkpoints.find_checkpoints(
      model_dir, [p for p in [checkpoints.indexed_checkpoint(model_dir)] if p])
  if not prefixes:
    raise ServingError(
        f"Found no checkpoint in {model_dir}; train first with "
        f"`python -m tf_raw.train --model_dir={model_dir}` or point "
        "--model_dir at a trained run.")
  saved_names = run_files.read_class_names(model_dir)
  try:
    # Evaluate as the run did: in its precision (float32 for older runs).
    precision = run_dir.recorded_setting(model_dir, "precision") or "float32"
  except run_dir.RunDirError as error:
    raise ServingError(str(error)) from error
  if precision not in model_lib.COMPUTE_DTYPES:
    raise ServingError(
        f"{os.path.join(model_dir, run_dir.RUN_CONFIG_FILE)} names precision "
        f"{precision!r}, which this version cannot compute in; restore that "
        "file from the run.")

  def restore(prefix):
    shapes = dict(tf.train.list_variables(prefix))  # A damaged index fails.
    if _OUTPUT_WEIGHT_KEY not in shapes:
      raise checkpoints.CheckpointError(
          f"{prefix} is not a checkpoint of this network (it has no "
          "model/w_o); point --model_dir at a run of python -m tf_raw.train.")
    num_classes = shapes[_OUTPUT_WEIGHT_KEY][1]
    class_names = saved_names
    if class_names is None:
      class_names = (data.CLASS_NAMES if num_classes == 10 else
                     tuple(f"class_{label}" for label in range(num_classes)))
    if len(class_names) != num_classes:
      raise checkpoints.CheckpointError(
          f"{os.path.join(model_dir, run_files.CLASS_NAMES_FILE)} names "
          f"{len(class_names)} classes but the checkpoint has {num_classes} "
          "outputs; restore that file from the run or delete it.")
    model = model_lib.ConvNet(num_classes=num_classes, precision=precision)
    # Serve the weights the run evaluated with: their moving average when the
    # run kept one (--ema_decay > 0), else the raw weights.
    if _OUTPUT_WEIGHT_KEY.replace("model/", "average_model/", 1) in shapes:
      checkpoint = tf.train.Checkpoint(average_model=model)
    else:
      checkpoint = tf.train.Checkpoint(model=model)
    try:
      # Only the weights: the optimizer slots and step counter are not needed.
      checkpoint.restore(prefix).expect_partial(
      ).assert_existing_objects_matched()
    except (AssertionError, ValueError) as error:
      raise checkpoints.CheckpointError(
          f"Cannot read the weights in {prefix} ({type(error).__name__}); it "
          "was written by a different model.") from error
    classifier = Classifier(model, class_names)
    classifier.checkpoint_prefix = prefix
    return classifier

  try:
    return checkpoints.restore_newest(
        model_dir, prefixes, restore, out,
        advice="restore them from a backup or train again")
  except checkpoints.CheckpointError as error:
    raise ServingError(str(error)) from error


def export_saved_model(model_dir, export_dir):
  """Writes the latest checkpoint of model_dir as a SavedModel in export_dir.

  Atomic: the SavedModel is written to a temporary folder next to export_dir
  and renamed into place only when complete.

  Returns:
    The `Classifier` that was exported (for comparisons in tests).

  Raises:
    ServingError: no checkpoint, or export_dir exists already.
  """
  classifier = restore_classifier(model_dir)
  export_dir = os.path.abspath(os.path.expanduser(export_dir))
  if os.path.exists(export_dir):
    raise ServingError(
        f"{export_dir} exists already; choose a new --export_dir (e.g. "
        "add a version number) or delete the old one.")
  parent = os.path.dirname(export_dir)
  try:
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".exporting-", dir=parent)
  except OSError as error:
    raise ServingError(
        f"Cannot create {export_dir} ({error.strerror or error}"
        f"{': ' + str(error.filename) if error.filename else ''}); choose an "
        "--export_dir in a folder you can write to.") from error
  try:
    names_file = os.path.join(staging, run_files.CLASS_NAMES_FILE)
    run_files.write_class_names(staging, _decode(classifier.class_names))
    # Copied into assets/ by tf.saved_model.save.
    classifier.class_names_file = tf.saved_model.Asset(names_file)
    saved = os.path.join(staging, "saved_model")
    tf.saved_model.save(
        classifier, saved,
        signatures={SIGNATURE_KEY: classifier.serve.get_concrete_function()})
    os.chmod(saved, 0o755)
    os.rename(saved, export_dir)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return classifier


def load_saved_model(export_dir):
  """Loads an exported SavedModel; returns (serving function, class names).

  The serving function takes uint8 [B, 32, 32, 3] and returns the
  signature's dict.

  Raises:
    ServingError: no SavedModel there.
  """
  export_dir = os.path.expanduser(export_dir)
  how = ("create one with `python -m tf_raw.tools.export --model_dir=<run> "
         "--export_dir=<folder>`")
  if not tf.saved_model.contains_saved_model(export_dir):
    raise ServingError(f"{export_dir} holds no SavedModel; {how}.")
  try:
    loaded = tf.saved_model.load(export_dir)
  except Exception as error:  # pylint: disable=broad-except
    # A garbled saved_model.pb or variables/ fails in many ways (DecodeError,
    # OSError, DataLossError, ...): all mean "not readable".
    raise ServingError(
        f"{export_dir} holds no readable SavedModel ({type(error).__name__}: "
        f"{run_dir.one_line(error, 120)}); {how}.") from error
  signature = getattr(loaded, "signatures", {}).get(SIGNATURE_KEY)
  _, inputs = (signature.structured_input_signature if signature is not None
               else ((), {}))
  outputs = signature.structured_outputs if signature is not None else {}
  if ("images" not in inputs or not isinstance(outputs, dict)
      or "probabilities" not in outputs
      or not isinstance(getattr(loaded, "class_names", None), tf.Variable)):
    raise ServingError(
        f"{export_dir} is not a SavedModel of tf_raw (it lacks the "
        f"'{SIGNATURE_KEY}' signature from images to probabilities, or the "
        f"class_names variable); {how}.")
  try:
    class_names = _decode(loaded.class_names)
  except (UnicodeDecodeError, AttributeError, ValueError) as error:
    raise ServingError(f"{export_dir} has unreadable class names; "
                       f"{how}.") from error
  return (lambda images: signature(images=images)), class_names


def _decode(string_variable):
  """A string tf.Variable's values as a tuple of str."""
  return tuple(name.decode("utf-8") for name in string_variable.numpy())
