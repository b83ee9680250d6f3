"""Flags of `python -m tf_raw.tools.plot` (curves of one or more runs)."""

from absl import flags

MODEL_DIR = flags.DEFINE_multi_string(
    "model_dir", None,
    "A run folder (its metrics.jsonl, or metrics_v1.jsonl of --api=v1) or a "
    "metrics .jsonl file; repeat the flag to draw several runs on one figure. "
    "Required.")
LABEL = flags.DEFINE_multi_string(
    "label", None,
    "A legend label per --model_dir, in the same order (default: the run's "
    "own label if its file has one, else the folder's name).")
OUTPUT = flags.DEFINE_string(
    "output", "curves.png",
    "Where to write the figure (PNG): mean training loss per epoch (when the "
    "runs recorded it) and test accuracy per evaluated epoch.")
TITLE = flags.DEFINE_string("title", None, "A title above the figure.")

flags.mark_flag_as_required("model_dir")
