"""The training configuration: one frozen dataclass, built once from flags.

The defaults are the original notebook's recipe (or, where the notebook had a
bug, the fix). `flags/train_flags.py` takes its defaults from here, so the two
cannot drift apart. Nothing in this module imports TensorFlow or absl
(`tf_raw.data` is numpy only), so a program can check its settings before it
spends seconds importing TensorFlow.
"""

import dataclasses
from typing import Optional

from tf_raw.data import CIFAR10_URL

# Checkpoints are model_dir/ckpt-<global step>.index and .data-*.
CHECKPOINT_PREFIX = "ckpt"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Everything one training run needs; see `flags/train_flags.py` for help."""

  # Data.
  dataset: str = "cifar10"  # "cifar10" or "synthetic".
  # Folder with CIFAR-10, or with train/<class>/ images; None: cache or download.
  data_dir: Optional[str] = None
  data_url: str = CIFAR10_URL
  cache_dir: str = "~/.cache/tf_raw"
  data_layout: str = "nhwc"  # "legacy_reshape" reproduces the notebook's bug.
  synthetic_train_size: int = 5000
  synthetic_test_size: int = 1000
  # Your own images (data_dir/train/<class>/...) without a test/ folder: the
  # fraction of each class held out for evaluation.
  validation_split: float = 0.1

  # The notebook's recipe.
  epochs: int = 50
  batch_size: int = 128
  learning_rate: float = 0.001
  decay: float = 0.9  # RMSProp's rho: the mean-square moving-average decay.
  momentum: float = 0.0
  epsilon: float = 1e-10  # Added inside the square root, as TF1 does.
  keep_prob_conv: float = 0.8  # Dropout keep probability after each conv block.
  keep_prob_hidden: float = 0.5  # Dropout keep probability after the FC layer.
  init_stddev: float = 0.01  # Stddev of tf.random.normal for every weight.
  # Evaluate with a moving average of the weights (0: the raw weights, as the
  # notebook did); smooths the noisy last epochs of constant-rate RMSProp.
  ema_decay: float = 0.999
  # "float32" (the notebook), or "mixed_bfloat16": float32 weights, optimizer
  # and loss, bfloat16 convolutions, matmuls and activations (tf_raw/model.py).
  precision: str = "float32"

  # Beyond the notebook (opt-in; the defaults are its recipe).
  # "crop_flip": a random crop of the 4-pixel zero-padded image and a random
  # mirror, per image and step, in the train step (tf_raw/augment.py).
  augment: str = "none"
  # "cosine": the learning rate falls from learning_rate to 0 over the run's
  # epochs * steps_per_epoch steps (optim.cosine_rate); "constant": TF1's.
  lr_schedule: str = "constant"

  # What the notebook left out, and we add.
  seed: int = 0
  shuffle: bool = True  # The notebook never shuffled.
  drop_remainder: bool = False  # The notebook dropped 80 images per epoch.
  eval_every: int = 10  # Epochs between test evaluations (0 and last always).
  # Test images per predict call: 250 evaluates as fast as 1,000 and keeps
  # ~100 MB less resident (TF's allocator keeps its peak; see docs/history.md).
  eval_batch_size: int = 250
  print_predictions: bool = True  # Print predicted labels, as the notebook did.

  # Where the run lives and how it survives interruption.
  model_dir: str = "runs/cifar10"
  checkpoint_every_steps: int = 100  # Plus one at the end of every epoch.
  max_to_keep: int = 3
  deterministic: bool = False  # tf.config.experimental.enable_op_determinism.
  log_every_steps: int = 100  # TensorBoard scalars (and plain progress lines).
  step_log: bool = False  # One line per step in model_dir/steps.log (audits).

  # Where the steps run (tf_raw/distribute.py): "default" (one device, the
  # lesson's step), "mirrored" (`replicas` GPUs, or logical CPU devices) or
  # "multi_worker" (one process per worker, TF_CONFIG; tf_raw/tools/launch.py).
  strategy: str = "default"
  replicas: int = 1
  # multi_worker: seconds a collective waits for a missing worker (0: forever).
  collective_timeout: float = 60.0

  # Which implementation trains: "v2" (this project's TF2 code) or "v1" (the
  # notebook's own TF1 graph, tf_raw/tf1/tf1_graph.py, run by
  # tf_raw/tf1/train_v1.py).
  api: str = "v2"

  def __post_init__(self):
    # Library callers (tests, notebooks) skip flag validation; keep them honest.
    assert self.batch_size > 0 and self.epochs >= 0, self
    assert 0.0 < self.keep_prob_conv <= 1.0, self
    assert 0.0 < self.keep_prob_hidden <= 1.0, self
    assert 0.0 <= self.ema_decay < 1.0, self
    assert self.augment in ("none", "crop_flip"), self
    assert self.lr_schedule in ("constant", "cosine"), self
    assert self.precision in ("float32", "mixed_bfloat16"), self
    assert self.strategy in ("default", "mirrored", "multi_worker"), self
    assert self.replicas >= 1 and self.collective_timeout >= 0, self


@dataclasses.dataclass(frozen=True)
class CompareConfig:
  """A run of `python -m tf_raw.tf1.compare`; see `flags/compare_flags.py`."""

  train: TrainConfig  # Data, batches, recipe and seed shared by both sides.
  steps: int = 50
  tolerance: float = 1e-6  # Largest |difference| allowed; 0: bit-identical.
  trap: str = "none"  # "keras_rmsprop": a porting mistake on the TF2 side.
