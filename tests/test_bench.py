"""`python -m tf_raw.bench --quick`: runs end to end and writes the documented JSON.

Timings are not checked (they belong to the benchmark, not to tests); the
FLOP count is checked against a hand computation, the ratios against the
repeats they come from, and the turn-taking protocol on its own.
"""

import io
import json
import os
import subprocess
import sys
from unittest import mock

from absl import flags
import tensorflow as tf

from flags import bench_flags
from tf_raw.bench import bench
from tf_raw.bench import config as bench_config
from tf_raw.bench import timing
from tf_raw.tools import cpu_features


class BenchTest(tf.test.TestCase):

  def test_training_flops_per_image_is_the_issue_figure(self):
    # Forward multiply-adds by hand: conv1 32*32*32*27, conv2 16*16*64*288,
    # conv3 8*8*128*576, fc 2048*625, out 625*10.
    forward = 884_736 + 4_718_592 + 4_718_592 + 1_280_000 + 6_250
    self.assertEqual(bench.FORWARD_MACS, forward)
    self.assertEqual(bench.TRAIN_FLOPS_PER_IMAGE,
                     2 * (3 * forward - 884_736))
    self.assertEqual(round(bench.TRAIN_FLOPS_PER_IMAGE / 1e5), 679)  # 67.9 M

  def test_quick_run_writes_every_candidate(self):
    path = os.path.join(self.get_temp_dir(), "bench.json")
    finished = subprocess.run(
        [sys.executable, "-m", "tf_raw.bench", "--quick", f"--json={path}"],
        # Generous: seven processes import TensorFlow or torch at once.
        capture_output=True, text=True, timeout=900, check=False)
    self.assertEqual(finished.returncode, 0, finished.stderr[-2000:])
    self.assertIn("images/sec", finished.stdout)
    with open(path) as f:
      results = json.load(f)
    self.assertIsInstance(results["machine"], dict)
    self.assertTrue(results["settings"]["quick"])
    self.assertGreater(results["matmul_gflops"], 0.0)
    self.assertEqual(set(results["candidates"]), set(bench_config.CANDIDATES))
    for name, entry in results["candidates"].items():
      self.assertEqual(entry["precision"],
                       bench_config.implementation(name)[1])
      if name.startswith("pytorch") and "skipped" in entry:
        continue  # torch is optional.
      self.assertGreater(entry["images_per_sec"], 0.0, name)
      self.assertLen(entry["repeats"], 2)  # One per round.
      self.assertLen(entry["cpu_repeats"], 2)
      if not name.startswith("pytorch"):
        self.assertIn(entry["onednn"], (True, False, None), name)
    self.assertGreater(results["candidates"]["tf_raw"]["eval_seconds"], 0.0)
    if results["machine"]["cpu_features"]:  # Empty without /proc/cpuinfo.
      self.assertIn("avx512f", results["machine"]["cpu_features"])
      self.assertIn("AVX512_BF16", finished.stdout)
    self.assertLen(results["machine"]["load_average"], 3)
    self.assertGreater(results["matmul"]["tf_bfloat16_gflops"], 0.0)
    comparisons = {(c["ours"], c["why"]): c for c in results["comparisons"]}
    self.assertIn(("tf_raw", "fastest float32 peer"), comparisons)
    self.assertIn(("tf_raw_bf16", "fastest bfloat16 peer"), comparisons)
    speedup = comparisons[("tf_raw_bf16", "bfloat16 speed-up")]
    ours, theirs = (results["candidates"]["tf_raw_bf16"],
                    results["candidates"]["tf_raw"])
    self.assertAllClose(speedup["round_ratios"],
                        [a / b for a, b in zip(ours["repeats"],
                                               theirs["repeats"])])
    self.assertAllClose(speedup["ratio_of_medians"],
                        ours["images_per_sec"] / theirs["images_per_sec"])
    epoch = results["epoch"]
    self.assertGreater(epoch["peak_rss_mb"], 100.0)
    self.assertGreater(epoch["images_per_sec"], 0.0)
    self.assertGreater(epoch["first_epoch_images_per_sec"], 0.0)
    self.assertGreater(epoch["step_rate_after"], 0.0)
    self.assertAllClose(epoch["ratio_to_step_rate"],
                        epoch["images_per_sec"] / theirs["images_per_sec"])
    self.assertAllClose(
        epoch["first_epoch_ratio_to_step_rate"],
        epoch["first_epoch_images_per_sec"] / theirs["images_per_sec"])

  def _config_from(self, argv, native_bfloat16):
    flags.FLAGS.unparse_flags()
    try:
      flags.FLAGS(["bench"] + argv)
      with mock.patch.object(cpu_features, "native_bfloat16",
                             return_value=native_bfloat16):
        return bench_flags.to_config()
    finally:
      flags.FLAGS.unparse_flags()

  def test_emulated_bfloat16_rows_are_left_out_unless_named(self):
    float32 = tuple(name for name in bench_config.CANDIDATES
                    if not name.endswith("_bf16"))
    self.assertEqual(self._config_from([], False).candidates, float32)
    for native in (True, None):  # Native, or unknown: every candidate.
      self.assertEqual(self._config_from([], native).candidates,
                       bench_config.CANDIDATES)
    named = ["--candidates=tf_raw,tf_raw_bf16"]
    self.assertEqual(self._config_from(named, False).candidates,
                     ("tf_raw", "tf_raw_bf16"))
    self.assertEqual(self._config_from(["--quick"], False).candidates,
                     bench_config.CANDIDATES)  # A smoke test runs them all.
    self.assertIn("left out", bench.bfloat16_note(False, float32))
    self.assertIn("emulated", bench.bfloat16_note(False, ("tf_raw_bf16",)))
    self.assertIsNone(bench.bfloat16_note(True, bench_config.CANDIDATES))
    self.assertIsNone(bench.bfloat16_note(None, bench_config.CANDIDATES))

  def test_turns_time_one_repeat_per_command(self):
    out = io.StringIO()
    turns = timing.Turns(batch_size=4, steps=3, out=out,
                         commands=io.StringIO("repeat\nrepeat\nstop\n"))
    steps_run = []
    turns.serve(steps_run.append, warmup_steps=2)
    self.assertEqual(steps_run, [2, 3, 3])
    lines = out.getvalue().splitlines()
    self.assertEqual(lines[0], timing.READY)
    self.assertLen(lines, 3)
    for line in lines[1:]:
      self.assertStartsWith(line, timing.REPEAT_PREFIX)
      rates = json.loads(line[len(timing.REPEAT_PREFIX):])
      self.assertGreater(rates["images_per_sec"], 0.0)
