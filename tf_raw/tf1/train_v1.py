"""`python -m tf_raw.train --api=v1`: the notebook's own TF1 loop, on our flags.

The same run as `--api=v2` (the default), but every step is the notebook's
`sess.run(train_op, feed_dict={...})` on the graph of `tf_raw/tf1_graph.py`:

    for epoch in range(epochs):
      for batch in range(steps_per_epoch):       # same order, same batches
        sess.run(train_op, feed_dict={X: ..., Y: ..., p_keep_conv: 0.8,
                                      p_keep_hidden: 0.5})
      if epoch % eval_every == 0 or last: print accuracy of sess.run(predict_op)

What is shared with the TF2 loop, so the two can be run side by side:

* the data (`sources.load`), the epoch order (`loop.epoch_order`) and the
  batches (`loop.steps_per_epoch`, `--drop_remainder`);
* the initial weights: drawn the TF2 way (`model.ConvNet(seed=...)`) and
  loaded into the TF1 variables, so both runs start from the same point;
* the output lines: the progress line, `epoch : N and accuracy : A`, the
  predictions, the per-class accuracies and `Final accuracy : A`.

What is not: dropout is TF1's stateful dropout, seeded by the graph seed
(`--seed`), so its masks differ from the TF2 code's stateless ones and the two
runs drift apart after the first step (with `--keep_prob_conv=1
--keep_prob_hidden=1` they stay bit-identical). And the TF2-only features are
off: no checkpoints, so no resume (a rerun starts from the beginning). The
evaluations go to `<model_dir>/metrics_v1.jsonl`, rewritten by each run.
"""

import dataclasses
import os
import time

import numpy as np

from tf_raw import data
from tf_raw import loop
from tf_raw import model as model_lib
from tf_raw.run_folder import run_dir
from tf_raw.tf1 import tf1_graph

METRICS_FILE = "metrics_v1.jsonl"

# The TrainConfig fields this loop uses; every other field (flag) is TF2-only
# and ignored here. Listing what is USED means a flag added later for the TF2
# loop is reported as ignored until someone wires it in here.
USED_FIELDS = frozenset({
    # Data.
    "dataset", "data_dir", "data_url", "cache_dir", "data_layout",
    "synthetic_train_size", "synthetic_test_size", "validation_split",
    # The recipe.
    "epochs", "batch_size", "learning_rate", "decay", "momentum", "epsilon",
    "keep_prob_conv", "keep_prob_hidden", "init_stddev",
    # Order, evaluation, output.
    "seed", "shuffle", "drop_remainder", "eval_every", "eval_batch_size",
    "print_predictions", "model_dir",  # model_dir: metrics_v1.jsonl only.
    # Handled by the program for both APIs.
    "api", "deterministic",
    # TF2-only, and refused unless at their defaults (see `check`).
    "augment", "lr_schedule",
    "precision",  # Only float32 gets here (train_flags refuses the others).
})


def ignored_flags(config):
  """Names of the config's fields (= flags) that --api=v1 does not use."""
  return [field.name for field in dataclasses.fields(config)
          if field.name not in USED_FIELDS]


def initial_weights(config):
  """The TF2 model's initial weights for `config.seed`, as numpy arrays."""
  net = model_lib.ConvNet(config.init_stddev, seed=config.seed)
  return [variable.numpy() for variable in net.weights]


def run_in_folder(config, dataset, write_run_files, out=print):
  """`run`, with the run folder's discipline: checks, the lock, then files.

  Raises:
    data.DataError: the data has other than the notebook's 10 classes.
    run_dir.RunDirError: model_dir holds a --api=v2 run (whose flags.txt
      and class_names.txt v1 would overwrite), or is locked.
    loop.TrainingError: see `run`.
  """
  check(config, dataset)
  with run_dir.RunLock(config.model_dir):
    if run_dir.has_checkpoints(config.model_dir):
      raise run_dir.RunDirError(
          f"--model_dir={config.model_dir} holds a --api=v2 run "
          "(checkpoints), whose flags.txt and class_names.txt --api=v1 would "
          "overwrite; use another --model_dir for --api=v1.")
    write_run_files.begin_in(config.model_dir)
    return run(config, dataset, out)


def check(config, dataset):
  """What `run` refuses, checked before anything is written.

  Raises:
    data.DataError: not 10 classes (the notebook's graph has 10 outputs).
    loop.TrainingError: a batch larger than the data with --drop_remainder.
  """
  if config.augment != "none" or config.lr_schedule != "constant":
    raise loop.TrainingError(
        "--api=v1 trains the notebook's TF1 graph, which has no --augment or "
        "--lr_schedule; leave them at none and constant, or use --api=v2.")
  if dataset.num_classes != tf1_graph.NUM_CLASSES:
    raise data.DataError(
        f"--api=v1 runs the notebook's graph, which has "
        f"{tf1_graph.NUM_CLASSES} classes, but this data has "
        f"{dataset.num_classes}; use --api=v2 (the default) for it.")
  loop.check_steps_per_epoch(
      loop.steps_per_epoch(len(dataset.train_labels), config.batch_size,
                           config.drop_remainder),
      len(dataset.train_labels), config.batch_size)


def run(config, dataset, out=print):
  """Trains the TF1 graph for `config.epochs` epochs, from scratch.

  Args:
    config: a `config.TrainConfig` (api is expected to be "v1").
    dataset: a `data.Dataset`.
    out: where user-facing lines go.

  Returns:
    The last evaluation's accuracy (None if nothing was evaluated).

  Raises:
    loop.TrainingError: a loss became NaN or infinite, or a batch size
      larger than the training set with --drop_remainder.
    SystemExit(130): interrupted (Ctrl-C); nothing to resume from.
  """
  images, labels = dataset.train_images, dataset.train_labels
  steps_per_epoch = loop.steps_per_epoch(
      len(labels), config.batch_size, config.drop_remainder)
  loop.check_steps_per_epoch(steps_per_epoch, len(labels), config.batch_size)
  ignored = ignored_flags(config)
  if ignored:
    out("--api=v1 runs the notebook's TF1 graph (tf.compat.v1 Session); it "
        "has no checkpoints or resume, and ignores these TF2-only flags: "
        + ", ".join("--" + name for name in ignored) + ".")

  metrics_path = os.path.join(config.model_dir, METRICS_FILE)
  if os.path.exists(metrics_path):
    os.remove(metrics_path)  # A v1 run always starts over.
  graph = tf1_graph.TF1Graph(
      initial_weights(config), config.learning_rate, config.decay,
      config.momentum, config.epsilon, seed=config.seed)
  accuracy = None
  step = 0
  start_time = time.monotonic()
  try:
    for epoch in range(config.epochs):
      epoch_start_time = time.monotonic()
      order = loop.epoch_order(config.seed, epoch, len(labels),
                                   config.shuffle)
      loss_sum = 0.0
      for batch in range(steps_per_epoch):
        index = order[batch * config.batch_size:
                      (batch + 1) * config.batch_size]
        # The notebook's sess.run(train_op, feed_dict={...}).
        loss = graph.train_step(images[index], labels[index],
                                config.keep_prob_conv, config.keep_prob_hidden)
        step += 1
        if not np.isfinite(loss):
          raise loop.TrainingError(
              f"The loss became NaN or infinite at step {step}; training "
              "stopped; lower --learning_rate.")
        loss_sum += loss
      now = time.monotonic()
      seconds_per_step = (now - start_time) / step
      out(loop.progress_line(
          epoch, config.epochs, loss_sum / steps_per_epoch,
          steps_per_epoch * config.batch_size / max(now - epoch_start_time,
                                                    1e-9),
          now - start_time,
          seconds_per_step * (config.epochs * steps_per_epoch - step)))
      if epoch % config.eval_every == 0 or epoch == config.epochs - 1:
        accuracy = _evaluate_and_log(graph, config, dataset, epoch, step, out)
  except KeyboardInterrupt:
    out(f"Interrupted at step {step}. --api=v1 keeps no checkpoints, so "
        "running the command again starts from the beginning.")
    raise SystemExit(130) from None
  finally:
    graph.close()
  if accuracy is None:
    out("Nothing trained: --epochs=0.")
  else:
    out(f"Final accuracy : {accuracy}")
  return accuracy


def _evaluate_and_log(graph, config, dataset, epoch, step, out):
  """Prints the notebook's lines and appends a record; returns the accuracy."""
  test_labels = dataset.test_labels
  # The notebook evaluated all 10,000 test images in one giant batch; the
  # predictions are the same in batches, with bounded memory.
  predictions = graph.predict(dataset.test_images, config.eval_batch_size)
  accuracy = float(np.mean(predictions == test_labels))
  per_class = loop.per_class_accuracy(predictions, test_labels,
                                      dataset.num_classes)
  names = dataset.class_names
  for line in loop.evaluation_lines(epoch, accuracy, per_class, predictions,
                                    names, config.print_predictions):
    out(line)
  record = {"api": "v1", "epoch": epoch, "step": step, "accuracy": accuracy,
            "per_class_accuracy": dict(zip(names, per_class.tolist())),
            "test_images": int(len(predictions)), "time": time.time()}
  run_dir.append_metric(config.model_dir, record, file_name=METRICS_FILE)
  return accuracy
