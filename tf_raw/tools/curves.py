"""Reading runs' metrics and drawing their curves (the library of `tools.plot`).

    label, epochs, evaluations = curves.read_run("runs/cifar10")
    print(curves.summary_line("default", epochs, evaluations))
    curves.draw([("default", epochs, evaluations)], "curves.png")

A run is a run folder (its metrics.jsonl: one record per epoch with the mean
training loss and images/sec, one per test evaluation) or a .jsonl file of
such records (docs/curves/ holds the README's runs). Drawing needs
matplotlib, an optional extra (requirements-notebook.txt); without it
`draw` raises `PlotError` with one sentence saying what to install. No
TensorFlow and no flags here: `python -m tf_raw.tools.plot` is the program.
"""

import os

from tf_raw.run_folder import run_dir

MISSING_MATPLOTLIB = (
    "plotting needs matplotlib, an optional extra that tf_raw itself does not "
    "need: run 'pip install -r requirements-notebook.txt' (or 'pip install "
    "matplotlib'), then this command again.")


class PlotError(Exception):
  """A run cannot be drawn; str(e) says why and what to do."""


def read_run(path):
  """Reads one run's records.

  Args:
    path: a run folder (metrics.jsonl, else metrics_v1.jsonl) or a .jsonl file.

  Returns:
    (label or None, epoch records, evaluation records), each list sorted by
    epoch. A {"kind": "source", "label": ...} record names the run.

  Raises:
    PlotError: no metrics file there, or no record in it.
  """
  if os.path.isdir(path):
    names = [name for name in (run_dir.METRICS_FILE, "metrics_v1.jsonl")
             if os.path.exists(os.path.join(path, name))]
    if not names:
      raise PlotError(f"{path} holds no metrics.jsonl; give a run folder "
                      "that has trained at least one epoch.")
    folder, file_name = path, names[0]
  elif os.path.isfile(path):
    folder, file_name = os.path.split(path)
  else:
    raise PlotError(f"{path} does not exist; give a run folder or a metrics "
                    ".jsonl file.")
  records = run_dir.read_metrics(folder or ".", kind=None,
                                 file_name=file_name)
  label = next((r.get("label") for r in records if r.get("kind") == "source"),
               None)
  epochs = sorted((r for r in records if r.get("kind") == "epoch"
                   and r.get("loss") is not None), key=lambda r: r["epoch"])
  evaluations = sorted(
      (r for r in records if r.get("kind", "evaluation") == "evaluation"
       and "accuracy" in r), key=lambda r: r["epoch"])
  if not epochs and not evaluations:
    raise PlotError(f"{os.path.join(folder, file_name)} holds no epoch or "
                    "evaluation record yet; train at least one epoch.")
  return label, epochs, evaluations


def summary_line(label, epochs, evaluations):
  """'label: 5 epochs, loss 2.3026 -> 0.4120; accuracy 0.121 (epoch 0) -> ...'."""
  parts = []
  if epochs:
    parts.append(f"{len(epochs)} epochs, training loss "
                 f"{epochs[0]['loss']:.4f} -> {epochs[-1]['loss']:.4f}")
  if evaluations:
    first, last = evaluations[0], evaluations[-1]
    parts.append(f"test accuracy {first['accuracy']:.4f} (epoch "
                 f"{first['epoch']}) -> {last['accuracy']:.4f} (epoch "
                 f"{last['epoch']}), {len(evaluations)} evaluations")
  return f"{label}: " + "; ".join(parts)


def draw(runs, output, title=None):
  """Writes the figure of `runs` to `output` (PNG).

  Args:
    runs: list of (label, epoch records, evaluation records).
    output: the PNG's path.
    title: optional figure title.

  Raises:
    PlotError: matplotlib is not installed.
  """
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
  except ImportError as error:
    raise PlotError(MISSING_MATPLOTLIB) from error
  matplotlib.use("Agg")  # Files only: no window, no display needed.
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  from matplotlib import ticker  # pylint: disable=g-import-not-at-top

  with_loss = any(epochs for _, epochs, _ in runs)
  figure, axes = pyplot.subplots(1, 2 if with_loss else 1,
                                 figsize=(10 if with_loss else 6, 3.8),
                                 squeeze=False)
  loss_axes, accuracy_axes = (axes[0] if with_loss else (None, axes[0][0]))
  for index, (label, epochs, evaluations) in enumerate(runs):
    # One colour per run on both panels: the n-th of matplotlib's cycle.
    color = f"C{index % 10}"
    if with_loss and epochs:
      loss_axes.plot([r["epoch"] for r in epochs],
                     [r["loss"] for r in epochs], marker="o",
                     markersize=3, label=label, color=color)
    if evaluations:
      accuracy_axes.plot([r["epoch"] for r in evaluations],
                         [r["accuracy"] for r in evaluations], marker="o",
                         markersize=3, label=label, color=color)
  if with_loss:
    loss_axes.set(xlabel="epoch (0-based)", ylabel="mean training loss",
                  title="training loss")
    loss_axes.grid(alpha=0.3)
  accuracy_axes.set(xlabel="epoch (0-based)", ylabel="test accuracy",
                    title="test accuracy")
  accuracy_axes.grid(alpha=0.3)
  for panel in axes[0]:
    panel.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
  accuracy_axes.legend(fontsize=8, loc="lower right")
  if title:
    figure.suptitle(title)
  figure.tight_layout()
  folder = os.path.dirname(os.path.abspath(output))
  os.makedirs(folder, exist_ok=True)
  figure.savefig(output, dpi=80)
  pyplot.close(figure)
