"""Flags of `python -m tf_raw.bench` (`make bench`).

Defaults come from `tf_raw.bench.BenchConfig` and are sized so that the whole
benchmark takes 3 to 6 minutes on a quiet 2-core machine; `--quick` shrinks every
measurement to a smoke test of a few seconds each (numbers then mean nothing).
`to_config()` turns the parsed flags into that frozen config, once.
"""

import dataclasses

from absl import flags

from flags import train_flags
from tf_raw.bench import config as bench_config
from tf_raw.tools import cpu_features

_D = bench_config.BenchConfig()  # The defaults.

CANDIDATES = flags.DEFINE_list(
    "candidates", list(_D.candidates),
    "Comma-separated training implementations to time, from "
    f"{','.join(bench_config.CANDIDATES)} (_bf16: mixed precision, float32 "
    "weights and bfloat16 layers). pytorch is skipped with a note when torch "
    "is not importable. Left at its default on a CPU without native bfloat16 "
    "(AVX512_BF16 or AMX), the _bf16 rows are left out: emulated, they run "
    "about 11x slower than float32 and would take most of the run; name "
    "them to time them anyway.")
# The trainer's own --batch_size (one flag per name in a process; the
# benchmark times what `python -m tf_raw.train --batch_size=N` would run).
BATCH_SIZE = train_flags.BATCH_SIZE
WARMUP_STEPS = flags.DEFINE_integer(
    "warmup_steps", _D.warmup_steps,
    "Training steps run and not timed before the first repeat (tracing, "
    "oneDNN primitive creation, caches).", lower_bound=1)
STEPS = flags.DEFINE_integer(
    "steps", _D.steps, "Training steps per timed repeat.", lower_bound=1)
REPEATS = flags.DEFINE_integer(
    "repeats", _D.repeats,
    "Rounds: every candidate times one repeat per round, in turns; the "
    "table shows each one's median and the ratios per round.",
    lower_bound=1)
ONEDNN = flags.DEFINE_enum(
    "onednn", _D.onednn, ["on", "off", "both"],
    "TF_ENABLE_ONEDNN_OPTS for the TensorFlow candidates (on: TensorFlow's "
    "default on x86). both: a process with each, timed in the same rounds; "
    "the faster counts.")
MATMUL_SIZE = flags.DEFINE_integer(
    "matmul_size", _D.matmul_size,
    "Side of the square float32 matrices whose product measures the "
    "machine's matmul rate.", lower_bound=64)
EPOCH = flags.DEFINE_bool(
    "epoch", _D.epoch,
    "Also run `python -m tf_raw.train` for two full-size epochs (50,000 "
    "synthetic images in the official CIFAR-10 format, 10,000 test images) "
    "and report its peak resident memory and each epoch's end-to-end "
    "images/sec (the first includes tracing the step).")
EPOCH_IMAGES = flags.DEFINE_integer(
    "epoch_images", _D.epoch_images,
    "Training images of that epoch (CIFAR-10: 50,000).", lower_bound=1)
EVAL_IMAGES = flags.DEFINE_integer(
    "eval_images", _D.eval_images,
    "Test images of one timed evaluation pass (CIFAR-10: 10,000).",
    lower_bound=1)
QUICK = flags.DEFINE_bool(
    "quick", _D.quick,
    "Smoke test: a few steps, small matrices and a small epoch, to check "
    "that everything runs (seconds per candidate; the numbers mean nothing).")
JSON = flags.DEFINE_string(
    "json", _D.json, "Also write the results to this JSON file.")


flags.register_validator(
    "candidates",
    lambda names: bool(names) and set(names) <= set(bench_config.CANDIDATES),
    f"--candidates must be a comma-separated list from "
    f"{','.join(bench_config.CANDIDATES)}.")


def to_config():
  """Returns the parsed flags as a frozen `BenchConfig`."""
  values = {field.name: flags.FLAGS[field.name].value
            for field in dataclasses.fields(bench_config.BenchConfig)}
  values["candidates"] = tuple(values["candidates"])
  config = bench_config.BenchConfig(**values)
  if config.quick:
    return config.quick_version()  # A smoke test times every candidate.
  if (not flags.FLAGS["candidates"].present
      and cpu_features.native_bfloat16() is False):
    return config.float32_only()
  return config
