"""`python -m tf_raw.bench --quick`: runs end to end and writes the documented JSON.

Timings are not checked (they belong to the benchmark, not to tests); the
FLOP count is checked against a hand computation.
"""

import json
import os
import subprocess
import sys

import tensorflow as tf

from tf_raw.bench import bench


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
        capture_output=True, text=True, timeout=600, check=False)
    self.assertEqual(finished.returncode, 0, finished.stderr[-2000:])
    self.assertIn("images/sec", finished.stdout)
    with open(path) as f:
      results = json.load(f)
    self.assertIsInstance(results["machine"], dict)
    self.assertTrue(results["settings"]["quick"])
    self.assertGreater(results["matmul_gflops"], 0.0)
    self.assertEqual(set(results["candidates"]),
                     {"tf_raw", "tf1_graph", "keras_fit", "pytorch"})
    for name, entry in results["candidates"].items():
      if name == "pytorch" and "skipped" in entry:
        continue  # torch is optional.
      self.assertGreater(entry["images_per_sec"], 0.0, name)
      self.assertLen(entry["repeats"], 2)
    self.assertGreater(results["candidates"]["tf_raw"]["eval_seconds"], 0.0)
    epoch = results["epoch"]
    self.assertGreater(epoch["peak_rss_mb"], 100.0)
    self.assertGreater(epoch["images_per_sec"], 0.0)
