"""tf.distribute: the same step on 1, 2 and 4 replicas and on 2 workers.

Each strategy runs in a process of its own (devices are split before
TensorFlow starts): `tests/distribute_fixtures.py` for the step itself, the
real programs (`python -m tf_raw.train`, `python -m tf_raw.tools.launch`) for
runs, checkpoints, stops and lost workers.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tf_raw import distribute

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "distribute_fixtures.py")
TIMEOUT = 300  # Seconds any one process may take on a loaded 2-core CPU.
# 2 or 4 replicas vs one device after 41 steps: the gradient's sum is added
# up in another order, so the last bits may differ, and by how much depends on
# the CPU's kernels. Bounds relative to each variable's largest value.
# Measured, weights, averages and mean squares / momentum slots (with
# momentum 0: the last step's update): on a 2-core AMD EPYC with AVX-512,
# <= 4.6e-8 / 5.7e-7; on one with AVX2 only, <= 1.8e-7 (4 replicas,
# average_model/w_c1) / 8.0e-7. The silent mistakes (the traps) move the
# weights >= 9e-6 (AVX-512) and >= 4.2e-5 (AVX2) away.
RELATIVE_BOUND = 1e-6
MOMENTUM_SLOT_BOUND = 1e-5
VARIABLES = 23  # 5 weights, 5 averages, 10 RMSProp slots, 3 counters.


def _env():
  return dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """{name: {variable#copy: array}} for each strategy, trained in parallel."""
  folder = tmp_path_factory.mktemp("distribute")
  runs = {"default": ("default", 1, "none"),
          "mirrored1": ("mirrored", 1, "none"),
          "mirrored2": ("mirrored", 2, "none"),
          "mirrored4": ("mirrored", 4, "none"),
          "no_all_reduce": ("mirrored", 2, "no_all_reduce"),
          "local_mean": ("mirrored", 2, "local_mean")}
  processes = {}
  for name, (strategy, replicas, trap) in runs.items():
    processes[name] = subprocess.Popen(
        [sys.executable, FIXTURES, f"--strategy={strategy}",
         f"--replicas={replicas}", f"--trap={trap}",
         f"--out={folder / name}.npz"],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  for name, process in processes.items():
    _, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, (name, stderr[-2000:])
  return {name: dict(np.load(f"{folder / name}.npz")) for name in runs}


def _copies(arrays, name):
  return [value for key, value in sorted(arrays.items())
          if key.split("#")[0] == name]


def _first_copies(arrays):
  return {key.split("#")[0]: value for key, value in arrays.items()
          if key.endswith("#0")}


def test_mirrored_x1_is_bit_identical_to_one_device(trained):
  one, mirrored = _first_copies(trained["default"]), trained["mirrored1"]
  assert len(mirrored) == len(one) == VARIABLES  # 1 copy of each.
  for name, value in one.items():
    np.testing.assert_array_equal(mirrored[name + "#0"], value, err_msg=name)
  assert one["global_step:0"] == 41


@pytest.mark.parametrize("run", ["mirrored2", "mirrored4"])
def test_replicas_keep_identical_copies_and_match_one_device(trained, run):
  one, arrays = _first_copies(trained["default"]), trained[run]
  replicas = int(run[-1])
  assert len(arrays) == VARIABLES * replicas
  for name, value in one.items():
    copies = _copies(arrays, name)
    assert len(copies) == replicas
    for copy in copies[1:]:  # Every replica took exactly the same update.
      np.testing.assert_array_equal(copy, copies[0], err_msg=name)
    assert relative_difference(copies[0], value) <= _bound(name), name


def _bound(name):
  if name.startswith("rmsprop") and "_mom" in name:
    return MOMENTUM_SLOT_BOUND
  return RELATIVE_BOUND


def relative_difference(a, b):
  """max |a - b|, relative to the largest |b| (0 for equal scalars)."""
  scale = max(float(np.abs(b).max()), np.finfo(np.float32).tiny)
  return float(np.abs(a.astype(np.float64) - b).max()) / scale


@pytest.mark.parametrize("trap", ["no_all_reduce", "local_mean"])
def test_the_silent_mistakes_fail_the_same_check(trained, trap):
  """Negative controls: each mistake of tf_raw/distribute.py is caught."""
  one, arrays = _first_copies(trained["default"]), trained[trap]
  for name in ("conv_net/w_c1:0", "conv_net/w_fc:0", "average_model/w_o:0"):
    copies = _copies(arrays, name)
    assert relative_difference(copies[0], one[name]) > 5 * RELATIVE_BOUND
    if trap == "no_all_reduce":  # Each copy followed its own rows.
      assert not np.array_equal(copies[0], copies[1])


def test_replica_rows_split_balanced_and_contiguous():
  for batch in (0, 1, 3, 5, 128):
    for replicas in (1, 2, 3, 4):
      rows = [tuple(int(x) for x in distribute.replica_rows(
          tf.constant(r), replicas, tf.constant(batch)))
              for r in range(replicas)]
      assert rows[0][0] == 0 and rows[-1][1] == batch
      for (_, end), (first, _) in zip(rows, rows[1:]):
        assert end == first
      counts = [end - first for first, end in rows]
      assert max(counts) - min(counts) <= 1


def test_draw_rows_are_rows_of_the_whole_draw():
  seed = tf.constant([7, 3], tf.int64)
  def draw(shape):
    return tf.random.stateless_uniform(shape, seed)
  whole = draw([10, 4, 2])
  part = distribute.draw_rows(draw, tf.constant([3, 4, 2]),
                              (tf.constant(6), tf.constant(10)))
  np.testing.assert_array_equal(part, whole[6:9])
  np.testing.assert_array_equal(
      distribute.draw_rows(draw, tf.constant([10, 4, 2]), None), whole)


def test_tf_config_is_read_and_checked():
  config = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
            "task": {"type": "worker", "index": 1}}
  assert distribute.worker_of_tf_config(
      {"TF_CONFIG": json.dumps(config)}) == (1, 2)
  assert distribute.worker_of_tf_config({}) == (0, 1)
  config["task"]["index"] = 2
  for text in (json.dumps(config), "{not json", "[]"):
    with pytest.raises(distribute.DistributeError,
                       match="TF_CONFIG is not a worker's cluster"):
      distribute.worker_of_tf_config({"TF_CONFIG": text})
