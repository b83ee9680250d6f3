"""`python -m tf_raw.tools.plot`: the curves of real run folders and of the
README's published runs (docs/curves/), several on one figure."""

import os
import re
import subprocess
import sys

import pytest

from tf_raw import config as config_lib
from tf_raw import data
from tf_raw.run_folder import guard
from tf_raw.tools import curves

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS_RUNS = ("notebook_published", "reproduction_with_bugs",
             "default_raw_weights", "default_moving_average")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
  """A 3-epoch synthetic run folder (two evaluations: epochs 0 and 2)."""
  model_dir = str(tmp_path_factory.mktemp("runs") / "short")
  config = config_lib.TrainConfig(
      dataset="synthetic", model_dir=model_dir, epochs=3, batch_size=16,
      eval_every=2, checkpoint_every_steps=0, print_predictions=False)
  guard.GuardedTrainer(config, data.synthetic(48, 20, seed=0),
                       out=lambda line: None).run()
  return model_dir


def test_a_run_folder_gives_its_loss_and_accuracy_per_epoch(short_run, tmp_path):
  label, epochs, evaluations = curves.read_run(short_run)
  assert label is None
  assert [r["epoch"] for r in epochs] == [0, 1, 2]
  assert all(r["loss"] > 0 and r["images_per_sec"] > 0 for r in epochs)
  assert [r["epoch"] for r in evaluations] == [0, 2]
  line = curves.summary_line("short", epochs, evaluations)
  assert line.startswith(f"short: 3 epochs, training loss {epochs[0]['loss']:.4f}"
                         f" -> {epochs[-1]['loss']:.4f}; test accuracy ")
  output = tmp_path / "curves.png"
  curves.draw([("short", epochs, evaluations)], str(output))
  assert output.read_bytes().startswith(PNG_SIGNATURE)


def test_docs_curves_are_the_readme_results_table():
  with open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8") as f:
    readme = f.read()
  # The results table: the rows after its header, up to the blank line.
  lines = readme.splitlines()
  start = next(index for index, line in enumerate(lines)
               if line.startswith("| accuracy on the held-out"))
  end = lines.index("", start)
  table_rows = [line for line in lines[start:end]
                if re.search(r"\| 0\.\d{4} \|", line)]
  assert len(table_rows) == 4, table_rows
  for name, row in zip(DOCS_RUNS, table_rows):
    label, epochs, evaluations = curves.read_run(
        os.path.join(REPO_ROOT, "docs", "curves", f"{name}.jsonl"))
    assert label and not epochs
    assert [r["epoch"] for r in evaluations] == [0, 10, 20, 30, 40, 49]
    published = [float(value.strip("* ")) for value in row.split("|")[2:8]]
    assert [r["accuracy"] for r in evaluations] == published, name


def test_docs_augmented_curve_is_the_readme_0_80_row():
  """docs/curves/augmented_0.80_recipe.jsonl is the run behind the bold row."""
  with open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8") as f:
    row = next(line for line in f if "`--batch_size=64`**" in line)
  # "| ... | 0.3632 | ... | 0.7993 | **0.8016** (0.8012) |": seven moving-
  # average accuracies, then the raw weights' final one.
  numbers = [float(n) for n in re.findall(r"\d\.\d{4}", row)]
  assert len(numbers) == 8, row
  published, raw_final = numbers[:7], numbers[7]
  label, epochs, evaluations = curves.read_run(
      os.path.join(REPO_ROOT, "docs", "curves", "augmented_0.80_recipe.jsonl"))
  assert label.startswith("--augment=crop_flip")
  assert [r["epoch"] for r in epochs] == list(range(50))
  by_epoch = {r["epoch"]: r for r in evaluations}
  assert [by_epoch[e]["accuracy"] for e in (0, 10, 20, 24, 30, 40, 49)] == (
      published)
  assert by_epoch[49]["raw_weights_accuracy"] == raw_final
  assert by_epoch[49]["accuracy"] >= 0.80


def test_without_matplotlib_one_sentence_says_what_to_install(monkeypatch):
  monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails.
  with pytest.raises(curves.PlotError) as error:
    curves.draw([("x", [], [{"epoch": 0, "accuracy": 0.5}])], "unused.png")
  assert str(error.value) == curves.MISSING_MATPLOTLIB
  assert "pip install -r requirements-notebook.txt" in str(error.value)


def test_the_program_draws_several_runs_and_reports_bad_ones(short_run,
                                                             tmp_path):
  output = tmp_path / "figure.png"
  command = [sys.executable, "-m", "tf_raw.tools.plot",
             f"--model_dir={short_run}",
             f"--model_dir=docs/curves/{DOCS_RUNS[0]}.jsonl",
             "--label=my run", f"--output={output}"]
  result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert lines[0].startswith("my run: 3 epochs, training loss ")
  assert lines[1].startswith("the notebook, as published (50,000 official "
                             "images): test accuracy 0.2969 (epoch 0) -> "
                             "0.6405 (epoch 49)")
  assert lines[2] == f"Wrote {output}: 2 run(s)."
  assert output.read_bytes().startswith(PNG_SIGNATURE)

  missing = tmp_path / "nothing_here"
  result = subprocess.run(
      [sys.executable, "-m", "tf_raw.tools.plot", f"--model_dir={missing}",
       f"--output={tmp_path / 'no.png'}"], cwd=REPO_ROOT, capture_output=True,
      text=True, timeout=300, check=False)
  assert result.returncode == 1
  assert result.stderr.strip() == (
      f"error: {missing} does not exist; give a run folder or a metrics "
      ".jsonl file.")
  assert not (tmp_path / "no.png").exists()
