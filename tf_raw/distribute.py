"""The same raw-op step on several replicas: `tf.distribute`, without Keras.

One device runs the lesson's step as it is (`tf_raw/step.py`). With
`--strategy=mirrored --replicas=N` (N GPUs, or N logical devices of the CPU)
or `--strategy=multi_worker` (one process per machine, `TF_CONFIG`), every
replica holds a copy of every variable, and each step runs on all of them at
once. The step becomes two parts (`step.Learner._train_step`):

    per replica (strategy.run):           across replicas, once per step:
      its rows of the global batch          the loss: SUM of the replicas'
      forward, tape.gradient                the step counter += 1
      all_reduce(SUM) of the gradients      the non-finite check
      ResourceApplyRMSProp on its copies
      the moving average of its copies

Five rules make every copy take exactly the one-device step:

1. Create the variables inside `strategy.scope()`: they become
   `MirroredVariable`s, one copy per replica. (Outside the scope each replica
   updates the one variable: N updates per step, silently.)
2. Divide each replica's loss by the GLOBAL batch size:
   `tf.nn.compute_average_loss(per_image, global_batch_size=B)`. The SUM of
   the replicas' gradients is then the gradient of the global mean. (A local
   mean summed over N replicas is N times the gradient, silently.)
3. SUM-all-reduce the gradients (`ReplicaContext.all_reduce`) before the
   update. (Without it every copy follows its own rows and the copies drift
   apart, silently.)
4. Apply the raw-op update inside `strategy.run`: there `var.handle` is the
   replica's own copy, so `ResourceApplyRMSProp` updates each copy with the
   same reduced gradient: the copies stay bit-identical. (Applied outside,
   only the first copy moves.)
5. Draw each random number (dropout masks, crops, flips) at the GLOBAL
   batch's shape and keep the replica's rows (`draw_rows`): the run is then
   the one-device run, whatever the number of replicas, and a resumed run is
   still exact. (Folding in the replica id is also valid, but gives a
   different run for every replica count.)

With 2 or 4 replicas the weights differ from one device's only by the order
in which the gradient's sum is added up (about one float32 ulp per step; the
mean-square slots come out identical in tests/test_distribute.py).

On GPUs, MirroredStrategy all-reduces with NCCL, one replica per GPU; across
machines, MultiWorkerMirroredStrategy all-reduces with collective ops over
gRPC (`TF_CONFIG` names the workers). ParameterServerStrategy is left out on
purpose: its asynchronous updates are not TF1's RMSProp step.
"""

import json
import os

import tensorflow as tf

# The values of --strategy.
DEFAULT = "default"
MIRRORED = "mirrored"
MULTI_WORKER = "multi_worker"
STRATEGIES = (DEFAULT, MIRRORED, MULTI_WORKER)


class DistributeError(Exception):
  """A strategy cannot be set up; str(e) says why and what to do."""


def configure_devices(replicas):
  """Makes `replicas` logical CPU devices when there is no GPU.

  Must run before TensorFlow uses any device (before the first op). With
  GPUs, MirroredStrategy takes the first `replicas` of them instead.

  Args:
    replicas: the number of replicas wanted on this machine.
  """
  if tf.config.list_physical_devices("GPU"):
    return
  cpu = tf.config.list_physical_devices("CPU")[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)


def replica_devices(replicas):
  """The devices of a mirrored run: the first `replicas` GPUs, else CPUs."""
  gpus = tf.config.list_logical_devices("GPU")
  devices = gpus or tf.config.list_logical_devices("CPU")
  if len(devices) < replicas:
    kind = "GPU" if gpus else "CPU"
    raise DistributeError(
        f"--replicas={replicas} asks for more devices than the {len(devices)} "
        f"{kind} device(s) TensorFlow sees; lower --replicas.")
  return [device.name for device in devices[:replicas]]


def make_strategy(strategy, replicas=1, timeout_seconds=None):
  """The `tf.distribute.Strategy` of --strategy (call configure_devices first).

  Args:
    strategy: one of STRATEGIES.
    replicas: replicas of a mirrored run on this machine.
    timeout_seconds: multi_worker: how long a collective (the gradients'
      all-reduce) waits for a missing worker before it fails; None waits
      forever.

  Returns:
    The strategy; `tf.distribute.get_strategy()` (the default, one device,
    today's step) for "default".
  """
  if strategy == DEFAULT:
    return tf.distribute.get_strategy()
  if strategy == MIRRORED:
    # Logical CPU devices share one memory: ReductionToOneDevice sums there
    # (NCCL, the GPU default, needs GPUs).
    cross_device_ops = None
    if not tf.config.list_logical_devices("GPU"):
      cross_device_ops = tf.distribute.ReductionToOneDevice()
    return tf.distribute.MirroredStrategy(replica_devices(replicas),
                                          cross_device_ops=cross_device_ops)
  options = tf.distribute.experimental.CommunicationOptions(
      timeout_seconds=timeout_seconds)
  return tf.distribute.MultiWorkerMirroredStrategy(
      communication_options=options)


def worker_of_tf_config(environ=os.environ):
  """(task index, number of workers) from TF_CONFIG; (0, 1) without it.

  Raises:
    DistributeError: TF_CONFIG is not the JSON tf.distribute expects.
  """
  text = environ.get("TF_CONFIG")
  if not text:
    return 0, 1
  try:
    tf_config = json.loads(text)
    workers = tf_config["cluster"]["worker"]
    task = tf_config["task"]
    index = int(task["index"])
    if task["type"] != "worker" or not 0 <= index < len(workers):
      raise ValueError(task)
  except (ValueError, KeyError, TypeError) as error:
    raise DistributeError(
        f"TF_CONFIG is not a worker's cluster description ({error!r}); "
        'set it to {"cluster": {"worker": ["host:port", ...]}, '
        '"task": {"type": "worker", "index": i}}, or use '
        "python -m tf_raw.tools.launch.") from None
  return index, len(workers)


def replica_rows(replica_id, num_replicas, batch_size):
  """(first, end): the contiguous rows of the global batch a replica takes.

  Balanced: the counts differ by at most one, and add up to `batch_size`
  (with fewer images than replicas, some replicas get none).

  Args:
    replica_id: int32 scalar, 0 .. num_replicas - 1.
    num_replicas: int.
    batch_size: int32 scalar, the global batch's images.
  """
  first = replica_id * batch_size // num_replicas
  end = (replica_id + 1) * batch_size // num_replicas
  return first, end


def draw_rows(draw, shape, rows):
  """`draw(shape)` for some rows of the global batch: drawn whole, sliced.

  Args:
    draw: a stateless random function of a shape, e.g.
      `lambda s: tf.random.stateless_uniform(s, seed)`.
    shape: int32 [rank], the local shape; its first entry is the rows.
    rows: None (the whole batch: `draw(shape)`), or (first, global_batch):
      this replica's rows start at `first` of a `global_batch`-row batch.

  Returns:
    The local tensor: rows first .. first + shape[0] - 1 of what one device
    would have drawn for the whole batch.
  """
  if rows is None:
    return draw(shape)
  first, global_batch = rows
  whole = draw(tf.concat([[global_batch], shape[1:]], axis=0))
  return whole[first:first + shape[0]]
