"""The programs around the TF1 graph, run as a user runs them (subprocesses).

`python -m tf_raw.tf1.compare` (agreeing, and forced to diverge), `python -m
tf_raw.tf1.graph --logdir` and `python -m tf_raw.train --api=v1`, each on tiny
synthetic data. Each start imports TensorFlow, so the four runs are started
together in setUpClass and the tests read their results.
"""

import glob
import json
import os
import subprocess
import sys
import tempfile
import unittest

from tf_raw.tf1 import parity

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_DATA = ["--synthetic_train_size=20", "--synthetic_test_size=12",
             "--batch_size=8"]
TIMEOUT_S = 900  # Generous: the test machine is often very busy.


def _start(args, env_overrides=None):
  env = dict(os.environ, **(env_overrides or {}))
  return subprocess.Popen(
      [sys.executable, "-m", *args], cwd=REPO_ROOT, env=env, text=True,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_all(processes):
  """{name: (returncode, stdout, stderr)}; kills the rest if one times out."""
  try:
    results = {}
    for name, process in processes.items():
      stdout, stderr = process.communicate(timeout=TIMEOUT_S)
      results[name] = (process.returncode, stdout, stderr)
    return results
  finally:
    for process in processes.values():
      if process.poll() is None:
        process.kill()
        process.communicate()


class ProgramsTest(unittest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.scratch = tempfile.TemporaryDirectory()
    cls.logdir = os.path.join(cls.scratch.name, "graph")
    cls.model_dir = os.path.join(cls.scratch.name, "v1")
    # The other oneDNN setting than this process's: test_tf1_parity.py covers
    # this one in-process; compare --tolerance=0 covers the other here.
    cls.onednn_here = parity.onednn_enabled()
    cls.other_onednn = "0" if cls.onednn_here else "1"
    processes = {
        # 50 steps, as the README claims for both settings.
        "agree": _start(["tf_raw.tf1.compare", "--steps=50", "--tolerance=0",
                         *TINY_DATA],
                        {"TF_ENABLE_ONEDNN_OPTS": cls.other_onednn}),
        "diverge": _start(["tf_raw.tf1.compare", "--steps=2",
                           "--trap=keras_rmsprop", *TINY_DATA]),
        "graph": _start(["tf_raw.tf1.graph", f"--logdir={cls.logdir}"]),
        "train_v1": _start(["tf_raw.train", "--api=v1", "--dataset=synthetic",
                            "--epochs=2", "--eval_every=1",
                            f"--model_dir={cls.model_dir}", *TINY_DATA]),
    }
    cls.results = _wait_all(processes)

  @classmethod
  def tearDownClass(cls):
    cls.scratch.cleanup()
    super().tearDownClass()

  def _result(self, name, expected_returncode):
    returncode, stdout, stderr = self.results[name]
    self.assertEqual(returncode, expected_returncode,
                     f"{name}: stdout:\n{stdout}\nstderr:\n{stderr}")
    self.assertNotIn("Traceback", stderr)
    return stdout.splitlines(), stderr

  def test_compare_agrees_bit_for_bit_with_the_other_onednn_setting(self):
    lines, _ = self._result("agree", 0)
    state = "on" if self.other_onednn == "1" else "off"
    self.assertIn(f"oneDNN {state}.", lines[1])
    self.assertIn("dropout off", lines[1])
    steps = [line.split() for line in lines if line[:5].strip().isdigit()]
    self.assertEqual([int(row[0]) for row in steps], list(range(1, 51)))
    for _, loss_tf2, loss_tf1, loss_diff, weight_diff in steps:
      self.assertEqual(loss_tf2, loss_tf1)
      self.assertEqual((loss_diff, weight_diff), ("0", "0"))
    self.assertIn("Test predictions (raw weights on both sides): 12 of 12 "
                  "agree.", lines)
    self.assertEqual(lines[-1],
                     "The two implementations agree at all 50 steps: "
                     "bit-identical.")

  def test_compare_exits_1_with_one_sentence_when_forced_to_diverge(self):
    lines, stderr = self._result("diverge", 1)
    self.assertTrue(any(line.startswith("--trap=keras_rmsprop") for line in
                        lines))
    error_lines = [line for line in stderr.splitlines()
                   if line.startswith("error:")]
    self.assertEqual(len(error_lines), 1, stderr)
    self.assertRegex(error_lines[0],
                     r"^error: the two implementations diverged beyond "
                     r"--tolerance=1e-06: loss by up to .*, weights by up to "
                     r"[\d.e-]+ \(step \d\)")
    # Keras's zero-started mean square with epsilon 1e-7 takes a first step
    # ~3,000x TF1's at these tiny initial gradients (see optim.py), so the
    # weights already differ after step 1.
    first_step = next(line.split() for line in lines
                      if line.startswith("    1 "))
    self.assertGreater(float(first_step[4]), 1e-6)

  def test_graph_prints_the_costs_and_writes_a_tensorboard_graph(self):
    lines, _ = self._result("graph", 0)
    text = "\n".join(lines)
    self.assertIn("Parameters: 1,379,274", text)
    self.assertIn("Multiply-adds per image, forward: 11,608,170 (11.6 M).",
                  text)
    self.assertIn("Training FLOPs per image: 67,879,548 (67.9 M)", text)
    self.assertIn("Conv2DBackpropInput", text)
    events = glob.glob(os.path.join(self.logdir, "events.out.tfevents.*"))
    self.assertEqual(len(events), 1, events)
    self.assertGreater(os.path.getsize(events[0]), 10_000)  # A whole graph.

  def test_train_api_v1_prints_the_notebook_lines(self):
    lines, _ = self._result("train_v1", 0)
    self.assertRegex(lines[0], r"^--api=v1 .* ignores these TF2-only flags: "
                     r".*--checkpoint_every_steps")
    self.assertEqual(
        [line.split(" and ")[0] for line in lines if line.startswith("epoch :")],
        ["epoch : 0", "epoch : 1"])
    self.assertRegex(lines[-1], r"^Final accuracy : [\d.]+$")
    with open(os.path.join(self.model_dir, "metrics_v1.jsonl")) as f:
      records = [json.loads(line) for line in f]
    self.assertEqual([r["epoch"] for r in records], [0, 1])
    self.assertEqual(records[-1]["accuracy"], float(lines[-1].split(": ")[1]))
    # No checkpoint: a v1 run cannot be resumed (flags.txt and
    # class_names.txt are written by the program for both APIs, and v1 takes
    # the folder's lock as v2 does).
    self.assertEqual(sorted(os.listdir(self.model_dir)),
                     [".lock", "class_names.txt", "flags.txt",
                      "metrics_v1.jsonl"])


class UsageErrorsTest(unittest.TestCase):
  """Bad flags: one line, exit 2, before TensorFlow is even imported."""

  def test_bad_flags_exit_2_with_one_line(self):
    cases = (["tf_raw.tf1.compare", "--steps=0"],
             ["tf_raw.tf1.compare", "--keep_prob_conv=0"],
             ["tf_raw.tf1.graph", "--api=v3"])
    results = _wait_all({index: _start(args)
                         for index, args in enumerate(cases)})
    for index, args in enumerate(cases):
      returncode, stdout, stderr = results[index]
      self.assertEqual(returncode, 2, args)
      self.assertEqual(stdout, "")
      self.assertEqual(len(stderr.strip().splitlines()), 1, stderr)
      self.assertIn("error:", stderr)


if __name__ == "__main__":
  unittest.main()
