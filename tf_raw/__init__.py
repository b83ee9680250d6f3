"""tf_raw: the 2018 TF1 CIFAR-10 notebook, rebuilt from TF2 low-level ops.

Modules: `data` (find, download and load CIFAR-10, or make a synthetic set),
`cifar_format` (the official batch file format), `download` (HTTP with the
standard library), `model` (the network), `optim` (TF1's RMSProp),
`training` (the loop and checkpoints), `config` (the settings), and the
`train` program. Beside them, the notebook's original: `tf1_graph` (its TF1
graph, runnable), `train_v1` (`train --api=v1`), `parity` and the `compare`
program (both side by side), `op_graph` and the `graph` program (one training
step's ops, shapes and FLOPs); see docs/tf1_to_tf2.md.

Importing this package sets two TensorFlow environment defaults, because they
only work before TensorFlow itself is imported (an explicit value wins):

* TF_ENABLE_ONEDNN_OPTS=1: TensorFlow leaves oneDNN off on some CPUs (AMD);
  on the 2-core AMD machine we measure on it is about 1.5x faster for this
  network (see BUILD.md, benchmarks).
* TF_CPP_MIN_LOG_LEVEL=2: hide TensorFlow's C++ info and warning chatter.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
