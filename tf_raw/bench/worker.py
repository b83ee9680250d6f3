"""One measurement of `python -m tf_raw.bench`, run in a process of its own.

    python -m tf_raw.bench.worker '{"task": "train", "candidate": "tf_raw", ...}'

prints its result as the last line of stdout: `BENCH_RESULT {json}`.

Why a process per measurement: TensorFlow reads TF_ENABLE_ONEDNN_OPTS once,
when it is imported, so oneDNN on and off need two processes; and a fresh
process per candidate keeps one framework's thread pools and caches from
slowing down the next. The parent (`tf_raw/bench/bench.py`) sets the
environment.

Tasks (the JSON's "task"):

* "matmul": {"size"} -> {"tf_gflops", "numpy_gflops"}: float32 C = A @ B of
  two size x size matrices, 2 * size**3 FLOPs each.
* "train": {"candidate", "batch_size", "warmup_steps", "steps", "repeats",
  "eval_images"} -> {"repeats": [images/sec, ...], "cpu_repeats": [images
  per CPU-second, ...]}; for tf_raw also
  "eval_seconds", one `Trainer.evaluate()` pass over eval_images images.
"""

import json
import sys
import tempfile
import time

from tf_raw.bench import timing

RESULT_PREFIX = "BENCH_RESULT "


def matmul_gflops(size, repeats=5):
  """The best float32 matmul rate of TensorFlow and numpy, GFLOP/s each."""
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
  return {"tf_gflops": best_rate(lambda: tf.matmul(a_tf, b_tf).numpy()),
          "numpy_gflops": best_rate(lambda: a @ b)}


def tf_raw_train(spec):
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
  total_steps = spec["warmup_steps"] + spec["steps"] * spec["repeats"]
  train_images, train_labels = bench_peers.random_pool(
      total_steps * batch_size, seed=0)
  test_images, test_labels = bench_peers.random_pool(spec["eval_images"],
                                                     seed=1)
  dataset = data.Dataset(train_images, train_labels, test_images,
                         test_labels, tuple(f"class_{k}" for k in range(10)))
  with tempfile.TemporaryDirectory() as model_dir:
    config = config_lib.TrainConfig(batch_size=batch_size, model_dir=model_dir)
    trainer = loop.Trainer(config, dataset, out=lambda line: None)
    order = loop.epoch_order(config.seed, 0, len(train_labels))
    next_batch = [0]

    def run_steps(num_steps):
      end = next_batch[0] + num_steps
      while next_batch[0] < end:
        count = min(loop.STEPS_PER_CALL, end - next_batch[0])
        trainer.train_batches(order, next_batch[0], count)
        next_batch[0] += count
      float(trainer.learner.epoch_loss_sum.numpy())  # Wait for the steps to finish.

    result = timing.time_repeats(run_steps, batch_size, spec["warmup_steps"],
                          spec["steps"], spec["repeats"])
    trainer.evaluate()  # Traces `predict`.
    start = time.perf_counter()
    trainer.evaluate()
    eval_seconds = time.perf_counter() - start
  assert np.isfinite(float(trainer.learner.epoch_loss_sum.numpy()))
  return {**result, "eval_seconds": eval_seconds,
          "eval_images": spec["eval_images"],
          "eval_batch_size": config.eval_batch_size}


def train(spec):
  """Dispatches a "train" task to its candidate."""
  args = (spec["batch_size"], spec["warmup_steps"], spec["steps"],
          spec["repeats"])
  candidate = spec["candidate"]
  if candidate == "tf_raw":
    return tf_raw_train(spec)
  if candidate == "tf1_graph":
    from tf_raw.bench import peers as bench_peers  # pylint: disable=g-import-not-at-top
    return bench_peers.tf1_graph_rates(*args)
  if candidate == "keras_fit":
    from tf_raw.bench import peers as bench_peers  # pylint: disable=g-import-not-at-top
    return bench_peers.keras_fit_rates(*args)
  if candidate == "pytorch":
    try:
      from tf_raw.bench import torch_peer as bench_torch  # pylint: disable=g-import-not-at-top
    except ImportError as error:
      return {"skipped": f"torch is not importable ({error})"}
    return bench_torch.pytorch_rates(
        *args, channels_last=spec["channels_last"], threads=timing.cores())
  raise ValueError(f"unknown candidate {candidate!r}")


def main(argv):
  spec = json.loads(argv[1])
  if spec["task"] == "matmul":
    result = matmul_gflops(spec["size"])
  elif spec["task"] == "train":
    result = train(spec)
  else:
    raise ValueError(f"unknown task {spec['task']!r}")
  print(RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
  main(sys.argv)
