"""notebooks/walkthrough.ipynb runs top to bottom, and says what it shows.

The notebook is executed here (nbclient, its own quick settings: synthetic
data, 315 training steps; about 1.5 minutes on 2 cores), so it cannot rot.
Its committed outputs must be there (people read it on GitHub) and small.
"""

import os
import re

import nbformat
from nbclient import NotebookClient

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(REPO_ROOT, "notebooks", "walkthrough.ipynb")
MAX_BYTES = 500_000  # Well under 1 MB, images included.


def _text(notebook):
  """All stream and text/plain outputs, in order, as one string."""
  parts = []
  for cell in notebook.cells:
    for output in cell.get("outputs", []):
      if output.output_type == "stream" and output.name == "stdout":
        parts.append(output.text)
      elif "data" in output and "text/plain" in output.data:
        parts.append(output.data["text/plain"])
  return "".join(parts)


def _check_outputs(notebook):
  text = _text(notebook)
  # Dropout: tf_raw's mask is stateless_dropout's, and the mix-up keeps 20%.
  assert "tf_raw's mask vs stateless_dropout: max |difference| = 0.0" in text
  assert "kept 0.200  <- TF1's keep_prob passed as TF2's rate" in text
  # The tape computes no image gradient.
  assert re.search(r"images \(a tensor\)\s+None", text)
  # The Keras trap: 3,000x TF1's first step on every weight.
  assert len(re.findall(r"^w_\w+ .* 3,000$", text, re.MULTILINE)) == 5
  # Tracing: 4 traces without a signature, 1 with.
  assert "traces without a signature: 4" in text
  assert "traces with input_signature [None] int32: 1" in text
  assert "TypeError: images must be uint8 pixels" in text
  # TF1 graph and TF2 step, bit for bit.
  steps = re.findall(r"^step \d: loss TF2 ([\d.]+)  TF1 ([\d.]+)  max \|weight "
                     r"diff\| (\S+)$", text, re.MULTILINE)
  assert len(steps) == 3 and all(a == b and diff == "0.0"
                                 for a, b, diff in steps), steps
  assert "fixed == original: True" in text
  # The short run learns: far above chance (0.1), near the ceiling (0.82).
  final = float(re.search(r"^Final accuracy : ([\d.]+)$", text,
                          re.MULTILINE).group(1))
  assert final > 0.6, final
  images = [output for cell in notebook.cells
            for output in cell.get("outputs", [])
            if "data" in output and "image/png" in output.data]
  assert len(images) == 2  # The reshape bug and the curves, inline.


def test_committed_notebook_has_its_outputs_and_is_small():
  assert os.path.getsize(NOTEBOOK) < MAX_BYTES
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
  assert all(cell.outputs for cell in code_cells)
  assert not [output for cell in code_cells for output in cell.outputs
              if output.output_type == "error"]
  _check_outputs(notebook)


def test_notebook_runs_top_to_bottom():
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  for cell in notebook.cells:  # Start from nothing, as a new reader does.
    if cell.cell_type == "code":
      cell.outputs, cell.execution_count = [], None
  # Run from notebooks/, as Jupyter opened there would.
  NotebookClient(notebook, timeout=600, kernel_name="python3",
                 resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}}
                 ).execute()  # Raises CellExecutionError on any error.
  _check_outputs(notebook)
