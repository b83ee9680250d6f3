"""The command-line habits: flags.txt, explore, --helpshort, progress output.

Programs run in-process (tests/program_fixtures.py), except --helpshort,
which needs a fresh process per program (it exits while parsing; cheap, as
no program imports TensorFlow before its flags are parsed).
"""

import io
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

from tests import image_fixtures
from tests import program_fixtures
from tf_raw.tools import explore
from tf_raw.tools import image_grid
from tf_raw.tools import progress
from tf_raw import train

_TINY_RUN = ["--dataset=synthetic", "--synthetic_train_size=48",
             "--synthetic_test_size=16", "--epochs=1", "--batch_size=16",
             "--learning_rate=0.002", "--noshuffle", "--log_every_steps=2",
             "--checkpoint_every_steps=0", "--noprint_predictions"]


def test_flagfile_in_model_dir_repeats_the_run(tmp_path):
  first, second = tmp_path / "first", tmp_path / "second"
  code, stdout, _ = program_fixtures.run_program(
      train, [*_TINY_RUN, f"--model_dir={first}"])
  assert code == 0, stdout
  assert "\r" not in stdout  # Not a terminal: plain lines only.
  assert "  step 2/3 of epoch 1" in stdout
  lines = (first / "flags.txt").read_text().splitlines()
  for expected in _TINY_RUN + [f"--model_dir={first}", "--seed=0"]:
    assert expected in lines
  # Only the program's flags: not absl's (--verbosity) nor --flagfile.
  assert not [line for line in lines
              if line.startswith(("--verbosity", "--flagfile", "--image"))]
  assert (first / "class_names.txt").read_text().startswith("class_0\n")
  assert {"train", "test"} <= set(os.listdir(first))  # TensorBoard runs.

  code, repeated, _ = program_fixtures.run_program(
      train, [f"--flagfile={first / 'flags.txt'}", f"--model_dir={second}"])
  assert code == 0, repeated
  assert (second / "flags.txt").read_text() == (
      (first / "flags.txt").read_text().replace(str(first), str(second)))
  final = [line for line in stdout.splitlines()
           if line.startswith("Final accuracy")]
  assert final and final == [line for line in repeated.splitlines()
                             if line.startswith("Final accuracy")]


def test_explore_prints_the_summary_and_writes_a_labelled_grid(tmp_path):
  output = tmp_path / "grid" / "samples.png"
  code, stdout, stderr = program_fixtures.run_program(
      explore, ["--dataset=synthetic", "--synthetic_train_size=20",
                "--synthetic_test_size=10", f"--output={output}"])
  assert code == 0, stderr
  from tf_raw import data  # pylint: disable=g-import-not-at-top
  dataset = data.synthetic(20, 10, seed=0)
  label = dataset.train_labels[0]
  assert "train: images (20, 32, 32, 3) uint8, labels (20,) int32" in stdout
  assert "test:  images (10, 32, 32, 3) uint8" in stdout
  assert f"its label: {label} = class_{label} (one-hot" in stdout
  assert f"Wrote {output}: the first 9 train images" in stdout
  grid = tf.io.decode_png(output.read_bytes()).numpy()
  for index in (0, 4, 8):
    top, left = image_fixtures.grid_tile_origin(index, columns=3)
    np.testing.assert_array_equal(
        grid[top:top + 128, left:left + 128],
        np.kron(dataset.train_images[index], np.ones((4, 4, 1), np.uint8)))
  assert not [name for name in os.listdir(output.parent)
              if name != "samples.png"]  # Written atomically.


def test_explore_bad_data_dir_is_one_line(tmp_path):
  code, _, stderr = program_fixtures.run_program(
      explore, [f"--data_dir={tmp_path}", f"--output={tmp_path / 'x.png'}"])
  assert code == 1
  assert stderr.startswith("error: Found no CIFAR-10 in --data_dir=")
  assert stderr.count("\n") == 1


@pytest.mark.parametrize("program, key_flags, not_shown", [
    ("tf_raw.train", ["--epochs", "--log_every_steps", "--validation_split",
                      "--data_dir", "--keep_prob_conv", "--seed"], []),
    ("tf_raw.tools.export", ["--model_dir", "--export_dir"], ["--epochs"]),
    ("tf_raw.tools.predict", ["--model_dir", "--saved_model", "--image",
                              "--top_k"], ["--epochs"]),
    ("tf_raw.tools.explore", ["--data_dir", "--dataset", "--output"],
     ["--epochs"]),
    # Flags shared through flags/common_flags.py show as the program's own.
    ("tf_raw.tf1.compare", ["--steps", "--data_dir", "--batch_size",
                            "--keep_prob_hidden", "--seed"], ["--epochs"]),
    ("tf_raw.tf1.graph", ["--api", "--keep_prob_conv"], ["--data_dir"]),
    ("tf_raw.tools.plot", ["--model_dir", "--label", "--output"],
     ["--epochs"]),
    ("tf_raw.bench", ["--[no]quick", "--candidates"], ["--epochs"]),
])
def test_helpshort_lists_each_programs_key_flags(program, key_flags,
                                                 not_shown):
  result = subprocess.run(
      [sys.executable, "-m", program, "--helpshort"],
      capture_output=True, text=True, timeout=120, check=False,
      cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  # absl's --helpshort prints the usage and exits 1, as absl's --help does.
  assert result.returncode == 1 and not result.stderr, result.stderr
  for flag in key_flags:
    assert f"  {flag}" in result.stdout
  for flag in not_shown:
    assert f"  {flag}" not in result.stdout


class _Terminal(io.StringIO):

  def isatty(self):
    return True


def _fake_trainer(steps_per_epoch=5):
  return types.SimpleNamespace(
      steps_per_epoch=steps_per_epoch,
      config=types.SimpleNamespace(epochs=2, batch_size=10))


def _drive(bar, trainer):
  bar.begin(trainer, 0)
  for step in range(1, 6):
    bar.after_step(trainer, step)
  bar.print_line("epoch 1/2  loss 2.3026")
  bar.after_epoch(trainer, 0, 5)


def test_progress_redraws_a_bar_only_on_a_terminal():
  terminal = _Terminal()
  _drive(progress.Progress(terminal, plain_every_steps=2), _fake_trainer())
  text = terminal.getvalue()
  # The bar is drawn over itself; the final state (5/5) is always drawn.
  assert "\r\033[Kepoch 1/2 [" in text and "] 5/5 " in text
  # A printed line first wipes the bar, then stands on a line of its own.
  assert text.endswith("\r\033[Kepoch 1/2  loss 2.3026\n")

  log = io.StringIO()
  _drive(progress.Progress(log, plain_every_steps=2), _fake_trainer())
  assert "\r" not in log.getvalue() and "\033" not in log.getvalue()
  assert [line.split("  ")[1] for line in log.getvalue().splitlines()[:2]] == [
      "step 2/5 of epoch 1", "step 4/5 of epoch 1"]


def test_caption_rows_follow_the_grid():
  captions = ["frog", "truck", "truck", "deer", "automobile"]
  assert image_grid.caption_rows(captions, columns=3) == (
      "  frog          truck         truck\n"
      "  deer          automobile")