"""Using what you trained, and looking at it: tools around the lesson.

`summaries` (TensorBoard event files) and `progress` (a progress bar) are
hooks of `loop.Trainer`; `serving` with the `export` and `predict` programs
turn a run into a SavedModel and classify image files; `explore` summarises
the data and draws a sample grid (`image_grid`); `plot` (the program) and
`curves` (its library) draw the loss and accuracy curves of runs from their
metrics.jsonl; `cifar_writer` writes
CIFAR-10's batch files byte for byte (used by the tests, the benchmark and
scripts/jpeg_to_cifar.py); `cpu_features` reads the CPU's AVX-512,
AVX512_BF16 and AMX flags (the --precision notice and the benchmark).
"""
