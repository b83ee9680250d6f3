r"""Draws the curves of one or more runs: `python -m tf_raw.tools.plot`.

    python -m tf_raw.tools.plot --model_dir=runs/cifar10 --output=curves.png
    python -m tf_raw.tools.plot --model_dir=runs/a --model_dir=runs/b \
        --label="default" --label="no moving average"
    make plot ARGS="--model_dir=runs/quick"

Each --model_dir is a run folder, whose metrics.jsonl holds one record per
epoch (mean training loss, images/sec) and one per test evaluation, or a
.jsonl file of such records (docs/curves/ holds the README's runs). The
figure has two panels, training loss and test accuracy per epoch (only the
accuracy panel when no run recorded its loss), every run on both. It prints
one line per run with its numbers, so the figure can be checked without
opening it.

The drawing needs matplotlib, an optional extra (requirements-notebook.txt):
without it the program says so in one line and exits 1. The reading and
drawing are `tf_raw.tools.curves`, which the notebook uses too.
"""

import os

from absl import app
from absl import flags

from flags import plot_flags  # pylint: disable=g-bad-import-order
from flags import cli

flags.adopt_module_key_flags(plot_flags)


def main(argv):
  cli.reject_extra_arguments(argv)
  from tf_raw.tools import curves  # pylint: disable=g-import-not-at-top
  paths = plot_flags.MODEL_DIR.value
  labels = plot_flags.LABEL.value or []
  if len(labels) > len(paths):
    cli.usage_error(argv, f"{len(labels)} --label flags for {len(paths)} "
                    "--model_dir flags; give at most one label per run")
  output = plot_flags.OUTPUT.value
  with cli.user_errors(curves.PlotError, OSError):
    runs = []
    for index, path in enumerate(paths):
      own_label, epochs, evaluations = curves.read_run(path)
      label = (labels[index] if index < len(labels) else
               own_label or os.path.basename(os.path.normpath(path)))
      runs.append((label, epochs, evaluations))
      print(curves.summary_line(label, epochs, evaluations))
    curves.draw(runs, output, plot_flags.TITLE.value)
  print(f"Wrote {output}: {len(runs)} run(s).")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags_or_exit)
