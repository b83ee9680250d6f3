r"""Executes notebooks/walkthrough.ipynb in place, so its committed outputs are fresh.

    python scripts/run_notebook.py            # then commit the notebook

Runs every cell from notebooks/ (as Jupyter opened there would), then drops
TensorFlow's C++ start-up log lines (stderr, with timestamps and process ids
that change on every run) from the outputs, so the diff shows what changed.
Needs requirements-test.txt (nbclient, nbformat, ipykernel, matplotlib).
"""

import os
import re
import sys
import time

import nbformat
from nbclient import NotebookClient

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(REPO_ROOT, "notebooks", "walkthrough.ipynb")
# "I0000 00:00:1796104757.198992   19653 port.cc:153] ...", "WARNING: All log
# messages before absl::InitializeLog() ...": TensorFlow's, not the lesson's.
TF_LOG_LINE = re.compile(r"^([IWE]\d{4} \d\d:\d\d:[\d.]+ +\d+ \S+:\d+\]|"
                         r"WARNING: All log messages before absl)")


def strip_tensorflow_logs(notebook):
  """Removes TensorFlow's C++ log lines from every cell's stderr output."""
  for cell in notebook.cells:
    outputs = []
    for output in cell.get("outputs", []):
      if output.output_type == "stream" and output.name == "stderr":
        kept = [line for line in output.text.splitlines(keepends=True)
                if not TF_LOG_LINE.match(line)]
        if not "".join(kept).strip():
          continue
        output.text = "".join(kept)
      outputs.append(output)
    if cell.cell_type == "code":
      cell.outputs = outputs


def main():
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  start = time.monotonic()
  NotebookClient(notebook, timeout=600, kernel_name="python3",
                 resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}}
                 ).execute()
  strip_tensorflow_logs(notebook)
  nbformat.write(notebook, NOTEBOOK)
  print(f"Executed {NOTEBOOK} in {time.monotonic() - start:.0f} s; "
        f"{os.path.getsize(NOTEBOOK):,} bytes.")


if __name__ == "__main__":
  sys.exit(main())
