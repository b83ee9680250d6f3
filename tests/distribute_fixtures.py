r"""Test helper: train a `step.Learner` under one strategy, in its own process.

    python tests/distribute_fixtures.py --strategy=mirrored --replicas=2 \
        --out=weights.npz [--trap=no_all_reduce|local_mean]

Devices can only be split before TensorFlow starts, so each strategy runs in
a process of its own (tests/test_distribute.py). It trains 41 steps on a
fixed random batch stream (40 of 128 images, then one of 3, fewer than 4
replicas), dropout and crop_flip on, and writes every variable (each copy of
a mirrored one) to an .npz file.

Traps: the silent mistakes tf_raw/distribute.py warns about, for negative
controls. no_all_reduce: each replica keeps its own gradients; local_mean:
each replica's loss is the mean over its own rows (then SUMmed).
"""

import argparse
import contextlib
import sys

import numpy as np

from flags import cli

STEPS = 41
IMAGES = 40 * 128 + 3


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--strategy", default="default")
  parser.add_argument("--replicas", type=int, default=1)
  parser.add_argument("--trap", default="none")
  parser.add_argument("--out", required=True)
  args = parser.parse_args()
  cli.set_tensorflow_defaults()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tf_raw import config as config_lib  # pylint: disable=g-import-not-at-top
  from tf_raw import distribute  # pylint: disable=g-import-not-at-top
  from tf_raw import step as step_lib  # pylint: disable=g-import-not-at-top

  if args.strategy != "default":
    distribute.configure_devices(args.replicas)
  strategy = distribute.make_strategy(args.strategy, args.replicas)
  if args.trap == "no_all_reduce":
    tf.distribute.ReplicaContext.all_reduce = (
        lambda self, reduce_op, value, options=None: value)
  elif args.trap == "local_mean":
    tf.nn.compute_average_loss = (
        lambda per_image, global_batch_size=None: tf.reduce_mean(per_image))

  config = config_lib.TrainConfig(augment="crop_flip")
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (IMAGES, 32, 32, 3), dtype=np.uint8)
  labels = rng.integers(0, 10, IMAGES).astype(np.int32)
  scope = (strategy.scope() if args.strategy != "default"
           else contextlib.nullcontext())
  with scope:
    learner = step_lib.Learner(config, 10, total_steps=STEPS)
  learner.train_steps(images[:20 * 128], labels[:20 * 128])
  learner.train_steps(images[20 * 128:], labels[20 * 128:])

  arrays = {}
  for variable in learner.variables:
    copies = getattr(variable, "values", (variable,))
    for index, copy in enumerate(copies):
      arrays[f"{variable.name}#{index}"] = copy.numpy()
  np.savez(args.out, **arrays)


if __name__ == "__main__":
  sys.exit(main())
