"""The benchmark's settings: one frozen dataclass, built once from flags.

`flags/bench_flags.py` takes its defaults from here. Like `config.py`, this
module imports neither TensorFlow nor absl, so the benchmark's parent process
(which only starts and reads subprocesses) stays light.
"""

import dataclasses
from typing import Optional

# The training implementations `python -m tf_raw.bench` can time, in table
# order: ours, then the peers (the 2018 TF1 graph, Keras, PyTorch), in
# float32; then ours and the peers that have one in mixed precision
# (float32 weights, bfloat16 layers; the TF1 graph has none).
CANDIDATES = ("tf_raw", "tf1_graph", "keras_fit", "pytorch",
              "tf_raw_bf16", "keras_fit_bf16", "pytorch_bf16")
_BFLOAT16_SUFFIX = "_bf16"


def implementation(candidate):
  """"keras_fit_bf16" -> ("keras_fit", "mixed_bfloat16"); "tf_raw" ->
  ("tf_raw", "float32")."""
  if candidate.endswith(_BFLOAT16_SUFFIX):
    return candidate[:-len(_BFLOAT16_SUFFIX)], "mixed_bfloat16"
  return candidate, "float32"


@dataclasses.dataclass(frozen=True)
class BenchConfig:
  """Everything one benchmark run needs; see `flags/bench_flags.py`."""

  candidates: tuple = CANDIDATES
  batch_size: int = 128  # The notebook's.
  warmup_steps: int = 10  # Tracing, oneDNN primitive creation, caches.
  steps: int = 20  # Per timed repeat: about 2 s at 1,300 images/sec.
  # Rounds: each candidate is timed once per round, in turns. 15 rounds give
  # 15 per-round ratios; their median shrugs off several disturbed rounds
  # (with 7, two back-to-back quiet runs' float32 ratios of medians were 7%
  # apart: 0.97x and 1.04x).
  repeats: int = 15
  # TF_ENABLE_ONEDNN_OPTS of the TensorFlow candidates; "both": a process
  # with each, timed as two rows (the faster counts).
  onednn: str = "on"
  matmul_size: int = 2048  # 17 GFLOP per product: long enough to time.
  epoch: bool = True  # Two full-size epochs of `python -m tf_raw.train`.
  epoch_images: int = 50_000  # CIFAR-10's training set.
  eval_images: int = 10_000  # CIFAR-10's test set.
  quick: bool = False
  json: Optional[str] = None

  def __post_init__(self):
    assert set(self.candidates) <= set(CANDIDATES), self
    assert self.onednn in ("both", "on", "off"), self

  def float32_only(self):
    """The same run without the mixed-precision (_bf16) candidates."""
    return dataclasses.replace(self, candidates=tuple(
        name for name in self.candidates
        if implementation(name)[1] == "float32"))

  def quick_version(self):
    """The same run shrunk to a smoke test (seconds per candidate)."""
    return dataclasses.replace(
        self, warmup_steps=1, steps=2, repeats=2,
        matmul_size=256, epoch_images=5 * 128, eval_images=500, quick=True)
