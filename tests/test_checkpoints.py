"""Checkpoints you can trust: the last K kept, damaged ones skipped with a
message, another model's or another configuration's refused by name, failed
writes leaving the previous checkpoint intact, one process per folder.

One reference run (2 epochs of 4 steps, a checkpoint every step, K = 3) is
trained once; each test works on a copy of its folder.
"""

import os
import resource
import shutil
import signal

import numpy as np
import pytest
import tensorflow as tf

from tests import cli_fixtures
from tf_raw.run_folder import checkpoints
from tf_raw import config as config_lib
from tf_raw import data
from tf_raw.run_folder import run_dir
from tf_raw.run_folder import guard

DATASET = data.synthetic(num_train=48, num_test=20, seed=1)


def _config(model_dir, **overrides):
  settings = dict(dataset="synthetic", model_dir=model_dir, epochs=2,
                  batch_size=12, checkpoint_every_steps=1, max_to_keep=3,
                  eval_every=1, print_predictions=False)
  settings.update(overrides)
  return config_lib.TrainConfig(**settings)


def _trainer(model_dir, lines=None, dataset=DATASET, **overrides):
  out = lines.append if lines is not None else (lambda line: None)
  return guard.GuardedTrainer(_config(model_dir, **overrides), dataset, out=out)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """The folder of a finished run: ckpt-6, ckpt-7, ckpt-8 kept."""
  model_dir = str(tmp_path_factory.mktemp("reference") / "run")
  _trainer(model_dir).run()
  return model_dir


@pytest.fixture
def run_copy(reference, tmp_path):
  model_dir = str(tmp_path / "run")
  shutil.copytree(reference, model_dir)
  return model_dir


def _prefix(model_dir, step):
  return os.path.join(model_dir, f"ckpt-{step}")


def test_keeps_the_newest_k(reference):
  assert sorted(os.listdir(reference)) == [
      ".lock", "checkpoint", "ckpt-6.data-00000-of-00001", "ckpt-6.index",
      "ckpt-7.data-00000-of-00001", "ckpt-7.index",
      "ckpt-8.data-00000-of-00001", "ckpt-8.index", "metrics.jsonl",
      "run_config.json"]
  assert tf.train.latest_checkpoint(reference) == _prefix(reference, 8)


def _damage(prefix, kind):
  data_file, index_file = prefix + ".data-00000-of-00001", prefix + ".index"
  if kind == "truncated_data":
    os.truncate(data_file, os.path.getsize(data_file) // 2)
  elif kind == "flipped_byte":  # Caught by the per-tensor CRC-32C.
    with open(data_file, "r+b") as f:
      f.seek(os.path.getsize(data_file) // 2)
      byte = f.read(1)
      f.seek(-1, os.SEEK_CUR)
      f.write(bytes([byte[0] ^ 0xFF]))
  elif kind == "empty_index":
    os.truncate(index_file, 0)
  elif kind == "missing_data":
    os.remove(data_file)
  else:
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["truncated_data", "flipped_byte",
                                  "empty_index", "missing_data"])
def test_damaged_newest_falls_back_to_the_one_before_and_says_so(run_copy,
                                                                 kind):
  _damage(_prefix(run_copy, 8), kind)
  lines = []
  trainer = _trainer(run_copy, lines)
  assert trainer.checkpoints.restore(out=trainer.out) == _prefix(run_copy, 7)
  assert len(lines) == 1
  assert lines[0].startswith(f"Checkpoint {_prefix(run_copy, 8)} is damaged (")
  assert lines[0].endswith("); falling back to the one before it.")
  expected = cli_fixtures.checkpoint_values(_prefix(run_copy, 7))
  assert int(trainer.learner.global_step.numpy()) == 7
  for weight in trainer.learner.model.weights:
    name = f"model/{weight.name.split('/')[-1][:-2]}/.ATTRIBUTES/VARIABLE_VALUE"
    np.testing.assert_array_equal(weight.numpy(), expected[name])


def test_after_a_fallback_the_run_redoes_the_lost_step_once(run_copy,
                                                           reference):
  _damage(_prefix(run_copy, 8), "truncated_data")
  lines = []
  _trainer(run_copy, lines).run()
  # Epoch 1's record and its evaluation, both of step 8: redone once each.
  assert ("Dropped 2 record(s) of steps after 7 from metrics.jsonl; training "
          "will redo them.") == lines[2]
  # The damaged ckpt-8 is overwritten by a good one, equal to the original.
  expected = cli_fixtures.checkpoint_values(_prefix(reference, 8))
  actual = cli_fixtures.checkpoint_values(_prefix(run_copy, 8))
  for name, value in expected.items():
    np.testing.assert_allclose(actual[name], value, rtol=1e-6, atol=1e-7)
  assert [(r["epoch"], r["step"]) for r in run_dir.read_metrics(run_copy)] == [
      (0, 4), (1, 8)]
  assert [(r["kind"], r["step"])
          for r in run_dir.read_metrics(run_copy, kind=None)] == [
              ("epoch", 4), ("evaluation", 4), ("epoch", 8), ("evaluation", 8)]


def test_every_checkpoint_damaged_is_an_error_naming_each(run_copy):
  for step in (6, 7, 8):
    _damage(_prefix(run_copy, step), "empty_index")
  with pytest.raises(checkpoints.CheckpointError,
                     match=rf"^Every checkpoint in {run_copy} is damaged: "
                     r"ckpt-8 \(.*\); ckpt-7 \(.*\); ckpt-6 \(.*\); restore "
                     r"them from a backup, or delete the folder"):
    _trainer(run_copy).run()


def test_lost_index_file_and_killed_save_leftovers(run_copy):
  os.remove(os.path.join(run_copy, "checkpoint"))  # The manager's index.
  leftover = os.path.join(run_copy, "ckpt-9_temp")  # A save cut by kill -9.
  os.makedirs(leftover)
  open(os.path.join(leftover, "part-00000-of-00001.index"), "w").close()
  trainer = _trainer(run_copy)
  assert trainer.checkpoints.restore(out=trainer.out) == _prefix(run_copy, 8)  # Found on disk.
  assert not os.path.exists(leftover)


@pytest.mark.parametrize("other, detail", [
    ({"w_c1": [3, 3, 3, 16]},
     r"conv_net/w_c1 has shape \(3, 3, 3, 16\) there but \(3, 3, 3, 32\) "
     r"here"),
    # 23 = 5 weights, their 5 averages (--ema_decay), 10 RMSProp slots (ms,
    # mom), global_step, epoch_loss_sum and the checkpoint's save_counter.
    ({"unrelated": []}, r"23 of this model's variables are missing from it"),
])
def test_checkpoint_of_another_model_is_a_clear_error(tmp_path, other,
                                                      detail):
  model_dir = str(tmp_path / "other")
  module = tf.Module()
  for name, shape in other.items():
    setattr(module, name, tf.Variable(tf.zeros(shape)))
  tf.train.Checkpoint(model=module).write(os.path.join(model_dir, "ckpt-1"))
  with pytest.raises(checkpoints.CheckpointError,
                     match=rf"^Checkpoint {model_dir}/ckpt-1 was written by a "
                     rf"different model or program \({detail}\), so this run "
                     "cannot continue from it; use a new --model_dir"):
    _trainer(model_dir).run()


def test_changed_settings_are_refused_naming_each_and_writing_nothing(
    run_copy):
  before = cli_fixtures.snapshot(run_copy)
  other_data = data.synthetic(num_train=48, num_test=20, seed=2)
  with pytest.raises(run_dir.RunDirError) as raised:
    _trainer(run_copy, dataset=other_data, batch_size=16, seed=3).run()
  message = str(raised.value)
  assert message.startswith(f"--model_dir={run_copy} holds a run made with "
                            "other settings (--batch_size=12 there, 16 now; "
                            "--seed=0 there, 3 now; training data with "
                            "checksum ")
  assert message.endswith("(different images or labels)), so continuing it "
                          "would not be the same run; rerun with the original "
                          "values, or use a new --model_dir.")
  assert "\n" not in message
  assert cli_fixtures.snapshot(run_copy) == before
  # Settings that do not change the steps may change.
  run_dir.check_identity(run_copy, run_dir.run_identity(_config(
      "elsewhere", epochs=9, eval_every=3, checkpoint_every_steps=0,
      max_to_keep=1, deterministic=True, step_log=True), DATASET))


def test_failed_write_part_way_keeps_the_previous_checkpoint(run_copy):
  kept = {name: value for name, value in cli_fixtures.snapshot(run_copy).items()
          if name.startswith(("ckpt-", "checkpoint", "metrics"))}
  trainer = _trainer(run_copy, epochs=3)  # Resumes at 8; saves step 9.
  # Every file is capped at 1 MiB: a checkpoint (16.5 MB) fails part way
  # through, as on a full disk. SIGXFSZ would kill us; ignored, the write
  # fails with EFBIG instead.
  limits = resource.getrlimit(resource.RLIMIT_FSIZE)
  previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
  resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, limits[1]))
  try:
    with pytest.raises(checkpoints.CheckpointError) as raised:
      trainer.run()
  finally:
    resource.setrlimit(resource.RLIMIT_FSIZE, limits)
    signal.signal(signal.SIGXFSZ, previous_handler)
  assert str(raised.value) == (
      f"Could not write checkpoint {_prefix(run_copy, 9)} (File too large); "
      f"the previous checkpoint, {_prefix(run_copy, 8)}, is intact; free "
      f"some disk space or make {run_copy} writable, then run the same "
      "command again.")
  after = cli_fixtures.snapshot(run_copy)
  assert not [name for name in after if name.startswith("ckpt-9")]
  assert {name: after[name] for name in kept} == kept  # Untouched.
  trainer = _trainer(run_copy, epochs=3)
  assert trainer.checkpoints.restore(out=trainer.out) == _prefix(run_copy, 8)


def test_a_second_process_in_the_folder_is_refused(run_copy):
  with run_dir.RunLock(run_copy):  # As another process would hold it.
    with pytest.raises(run_dir.RunDirError,
                       match=rf"^Another process is training in --model_dir="
                       rf"{run_copy}; wait for it"):
      _trainer(run_copy).run()


def test_atomic_write_keeps_the_old_file_when_the_rename_fails(tmp_path,
                                                              monkeypatch):
  path = tmp_path / "run_config.json"
  path.write_text("old")

  def failing_replace(source, target):
    raise OSError(28, "No space left on device")
  monkeypatch.setattr(os, "replace", failing_replace)
  with pytest.raises(OSError):
    run_dir.write_atomically(str(path), "new")
  assert path.read_text() == "old"
  assert os.listdir(tmp_path) == ["run_config.json"]  # No temporary file.


def test_checkpoints_are_ordered_by_step_not_by_name(tmp_path):
  # By name, "ckpt-8" sorts after "ckpt-12" and "ckpt-100": the newest is the
  # highest step, whatever its number of digits.
  model_dir = str(tmp_path / "run")
  os.makedirs(model_dir)
  for step in (8, 12, 100, 9):
    open(_prefix(model_dir, step) + ".index", "wb").close()
  store = checkpoints.CheckpointStore(tf.train.Checkpoint(), model_dir, 3)
  assert store.candidates() == [_prefix(model_dir, step)
                                for step in (100, 12, 9, 8)]


def test_restore_takes_the_highest_step_across_a_digit_boundary(run_copy):
  # ckpt-6 renamed ckpt-12 (the index file lost, so only the files count):
  # restore must pick ckpt-12 over ckpt-8 and ckpt-7.
  for suffix in (".index", ".data-00000-of-00001"):
    os.rename(_prefix(run_copy, 6) + suffix, _prefix(run_copy, 12) + suffix)
  os.remove(os.path.join(run_copy, "checkpoint"))
  trainer = _trainer(run_copy)
  assert trainer.checkpoints.restore() == _prefix(run_copy, 12)
  assert int(trainer.learner.global_step.numpy()) == 6
