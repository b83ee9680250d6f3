"""One candidate of `python -m tf_raw.bench`, run in a process of its own.

    python -m tf_raw.bench.worker '{"task": "train", "candidate": "tf_raw", ...}'

A "train" worker builds its candidate, warms up, prints READY, then times one
repeat per "repeat" line the parent writes to its stdin (`timing.Turns`), and
on "stop" prints its result as the last line of stdout:
`BENCH_RESULT {json}`. A "matmul" worker just prints its result.

Why a process per candidate: TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, when
it is imported, so oneDNN on and off need two processes; Keras's precision
policy is global; and one framework's thread pools and caches stay out of the
next one's way. All of them are started (and warmed up) first and then timed
in turns, so every candidate sees the same machine. The parent
(`tf_raw/bench/bench.py`) sets the environment.

Tasks (the JSON's "task"):

* "matmul": {"size"} -> {"tf_gflops", "numpy_gflops", "tf_bfloat16_gflops"}:
  C = A @ B of two size x size matrices, 2 * size**3 FLOPs each.
* "train": {"candidate", "precision", "batch_size", "warmup_steps", "steps",
  "max_repeats", "eval_images", "channels_last"} -> what the candidate
  reports (for the TensorFlow ones "onednn": whether oneDNN was on; for
  tf_raw "eval_seconds", one `Trainer.evaluate()` pass over eval_images
  images); the repeats themselves went out as REPEAT lines.
"""

import json
import sys
import tempfile
import time

from tf_raw.bench import timing

RESULT_PREFIX = "BENCH_RESULT "


def matmul_gflops(size, repeats=5):
  """The best matmul rate of TensorFlow (float32, bfloat16) and numpy."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  flops = 2.0 * size**3
  rng = np.random.default_rng(0)
  a, b = (rng.standard_normal((size, size), dtype=np.float32)
          for _ in range(2))

  def best_rate(product):
    product()  # Warm-up: allocation, kernel selection.
    seconds = []
    for _ in range(repeats):
      start = time.perf_counter()
      product()
      seconds.append(time.perf_counter() - start)
    return flops / min(seconds) / 1e9

  a_tf, b_tf = tf.constant(a), tf.constant(b)
  # .numpy() waits for the result (TF runs ops asynchronously on a GPU).
  a_bf16, b_bf16 = tf.cast(a_tf, tf.bfloat16), tf.cast(b_tf, tf.bfloat16)
  return {"tf_gflops": best_rate(lambda: tf.matmul(a_tf, b_tf).numpy()),
          "numpy_gflops": best_rate(lambda: a @ b),
          "tf_bfloat16_gflops": best_rate(
              lambda: tf.matmul(a_bf16, b_bf16).numpy())}


def onednn_enabled():
  """Whether this process's TensorFlow runs its oneDNN kernels (or None)."""
  try:
    from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-import-not-at-top
    return bool(_pywrap_util_port.IsMklEnabled())
  except (ImportError, AttributeError):
    return None


def tf_raw_train(spec, turns):
  """tf_raw's own training step, exactly as `python -m tf_raw.train` runs it.

  It builds a `loop.Trainer` and calls `Trainer.train_batches`, the call
  `Trainer.run()` makes, STEPS_PER_CALL steps at a time (run() adds only a
  checkpoint every 100 steps and at the end of each epoch; the full-size
  epoch in bench.py measures those too).
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tf_raw import config as config_lib  # pylint: disable=g-import-not-at-top
  from tf_raw import data  # pylint: disable=g-import-not-at-top
  from tf_raw import loop  # pylint: disable=g-import-not-at-top
  from tf_raw.bench import peers as bench_peers  # pylint: disable=g-import-not-at-top

  batch_size = spec["batch_size"]
  total_steps = spec["warmup_steps"] + spec["steps"] * spec["max_repeats"]
  train_images, train_labels = bench_peers.random_pool(
      total_steps * batch_size, seed=0)
  test_images, test_labels = bench_peers.random_pool(spec["eval_images"],
                                                     seed=1)
  dataset = data.Dataset(train_images, train_labels, test_images,
                         test_labels, tuple(f"class_{k}" for k in range(10)))
  with tempfile.TemporaryDirectory() as model_dir:
    config = config_lib.TrainConfig(batch_size=batch_size, model_dir=model_dir,
                                    precision=spec["precision"])
    trainer = loop.Trainer(config, dataset, out=lambda line: None)
    order = loop.epoch_order(config.seed, 0, len(train_labels))
    next_batch = [0]

    def run_steps(num_steps):
      # The batches wrap around: the parent may ask for a repeat or two
      # more than max_repeats (around the epoch), and data does not change
      # the cost of a step.
      end = next_batch[0] + num_steps
      while next_batch[0] < end:
        num_batches = len(order) // batch_size
        first = next_batch[0] % num_batches
        count = min(loop.STEPS_PER_CALL, end - next_batch[0],
                    num_batches - first)
        trainer.train_batches(order, first, count)
        next_batch[0] += count
      float(trainer.learner.epoch_loss_sum.numpy())  # Wait for the steps to finish.

    turns.serve(run_steps, spec["warmup_steps"])
    trainer.evaluate()  # Traces `predict`.
    start = time.perf_counter()
    trainer.evaluate()
    eval_seconds = time.perf_counter() - start
  assert np.isfinite(float(trainer.learner.epoch_loss_sum.numpy()))
  return {"eval_seconds": eval_seconds,
          "eval_images": spec["eval_images"],
          "eval_batch_size": config.eval_batch_size}


def train(spec):
  """Runs a "train" task's candidate; returns what it reports at the end."""
  turns = timing.Turns(spec["batch_size"], spec["steps"])
  candidate, precision = spec["candidate"], spec["precision"]
  if candidate == "pytorch":
    try:
      from tf_raw.bench import torch_peer as bench_torch  # pylint: disable=g-import-not-at-top
    except ImportError as error:
      return {"skipped": f"torch is not importable ({error})"}
    return bench_torch.pytorch_rates(
        turns, spec["warmup_steps"], channels_last=spec["channels_last"],
        threads=timing.cores(), precision=precision)
  if candidate == "tf_raw":
    result = tf_raw_train(spec, turns)
  elif candidate == "tf1_graph":
    from tf_raw.bench import peers as bench_peers  # pylint: disable=g-import-not-at-top
    result = bench_peers.tf1_graph_rates(turns, spec["warmup_steps"])
  elif candidate == "keras_fit":
    from tf_raw.bench import peers as bench_peers  # pylint: disable=g-import-not-at-top
    result = bench_peers.keras_fit_rates(turns, spec["warmup_steps"],
                                         spec["max_repeats"], precision)
  else:
    raise ValueError(f"unknown candidate {candidate!r}")
  return {**result, "onednn": onednn_enabled()}


def main(argv):
  spec = json.loads(argv[1])
  if spec["task"] == "matmul":
    result = matmul_gflops(spec["size"])
    result["onednn"] = onednn_enabled()
  elif spec["task"] == "train":
    result = train(spec)
  else:
    raise ValueError(f"unknown task {spec['task']!r}")
  print(RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
  main(sys.argv)
