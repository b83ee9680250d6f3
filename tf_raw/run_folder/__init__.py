"""What makes a run folder (`--model_dir`) trustworthy, around the lesson's loop.

`guard.GuardedTrainer` is `loop.Trainer` with every promise of BUILD.md's
"What survives what": `checkpoints.CheckpointStore` falls back past a damaged
checkpoint and leaves the previous one intact when a write fails;
`run_dir` holds the folder's other files (run_config.json, which refuses a
restart with different settings; the lock, one process per folder;
metrics.jsonl, kept in step with the checkpoints; steps.log); `run_files`
writes flags.txt and class_names.txt; `soak` (`python -m
tf_raw.run_folder.soak`) restarts a run a hundred times to prove it. None of
it changes a training step.
"""
