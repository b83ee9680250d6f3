r"""How fast tf_raw trains, beside its peers and this machine's limit.

    python -m tf_raw.bench [--json=bench.json] [--quick]      (make bench)

In one run, on one machine and the same data shapes (batch 128 of uint8
32x32x3 images, random values), it times:

1. tf_raw: `loop.Trainer`'s own step, called as `python -m tf_raw.train`
   calls it (`Trainer.train_batches`);
2. tf1_graph: the 2018 notebook's graph through `tf.compat.v1` (Session,
   placeholders, feed_dict, RMSPropOptimizer);
3. keras_fit: the same network as a `keras.Sequential` and `model.fit`;
4. pytorch: the same network in PyTorch, if torch is importable;
5. in mixed precision (float32 weights, bfloat16 layers): tf_raw_bf16
   (`--precision=mixed_bfloat16`), keras_fit_bf16 (Keras's `mixed_bfloat16`
   policy) and pytorch_bf16 (`torch.autocast` to bfloat16).

Every candidate (and setting: oneDNN on or off, PyTorch's channels-last or
channels-first) runs in its own process (`tf_raw/bench/worker.py`). All of
them start and warm up first; then they are timed in rounds, each process
one repeat of `steps` steps per round, in turns (A B C, B C A, ...), so
every candidate sees the same machine, busy or quiet. The table shows each
one's median images/sec, that as training FLOP/s (67.9 MFLOP per image,
`TRAIN_FLOPS_PER_IMAGE`) and as a share of the matmul rate measured in the
same run at the row's precision; then the ratios that matter, each as the
ratio of medians and as the median (min-max) of the per-round ratios: the
spread says how far to trust it. The CPU's AVX-512, AVX512_BF16 and AMX
flags, the load average and each TensorFlow process's oneDNN state are
printed with it.

Then it runs `python -m tf_raw.train` itself for two full-size epochs (50,000
synthetic images written in the official CIFAR-10 format, 10,000 test
images), and reports that process's peak resident memory (ru_maxrss), each
epoch's end-to-end images/sec as the program printed it (checkpoints
included; the first epoch also pays for tracing the step, the second is what
every later epoch of a run costs) and its wall time, and those rates over
tf_raw's step rate in the same run (the median of the rounds, and one repeat
timed right after the epochs); and the time of one evaluation pass over
10,000 images.
"""

import dataclasses
import importlib.metadata
import json
import os
import platform
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from absl import app
from absl import flags

from flags import bench_flags  # pylint: disable=g-bad-import-order
from flags import cli
from tf_raw.bench import config as bench_config
from tf_raw.bench import timing
from tf_raw.bench import worker as bench_worker
from tf_raw.tools import cpu_features

flags.adopt_module_key_flags(bench_flags)
flags.declare_key_flag("batch_size")  # Defined by train_flags, used here.


def _conv_macs(height, width, kernel_shape):
  """Multiply-adds of a SAME conv: one kernel-volume dot per output value."""
  kernel_h, kernel_w, in_channels, out_channels = kernel_shape
  return height * width * out_channels * kernel_h * kernel_w * in_channels


# Multiply-adds of one image's forward pass, layer by layer (tf_raw/model.py).
FORWARD_MACS = (_conv_macs(32, 32, (3, 3, 3, 32))      # 0.88 M
                + _conv_macs(16, 16, (3, 3, 32, 64))   # 4.72 M
                + _conv_macs(8, 8, (3, 3, 64, 128))    # 4.72 M
                + 2048 * 625 + 625 * 10)               # 1.29 M
# Training = forward + the gradient w.r.t. each layer's input + the gradient
# w.r.t. each weight: 3x the forward matmuls, less the first conv's input
# gradient (the images need none). 2 FLOPs per multiply-add: 67.9 MFLOP.
TRAIN_FLOPS_PER_IMAGE = 2 * (3 * FORWARD_MACS - _conv_macs(32, 32, (3, 3, 3, 32)))

# Seconds one measurement may take before it is abandoned and reported: a
# guard against hangs, generous because a busy machine slows everything.
WORKER_TIMEOUT_S = 900
EPOCH_TIMEOUT_S = 900


# ------------------------------------------------------------- processes --


class Worker:
  """One candidate's process (`tf_raw/bench/worker.py`), driven in turns.

  A thread reads its stdout into a queue, so that every wait has a timeout
  and a hung or dead worker becomes an error row, not a hung benchmark.
  """

  def __init__(self, name, setting, spec, environment):
    self.name, self.setting, self.spec = name, setting, spec
    self.repeats, self.cpu_repeats = [], []
    self.result = None  # The worker's final dict, or {"error"/"skipped"}.
    self._stderr = tempfile.TemporaryFile(mode="w+")
    self._process = subprocess.Popen(
        [sys.executable, "-m", "tf_raw.bench.worker", json.dumps(spec)],
        env={**os.environ, **environment}, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1)
    self._lines = queue.Queue()
    threading.Thread(target=self._read, daemon=True).start()

  def _read(self):
    for line in self._process.stdout:
      self._lines.put(line.rstrip("\n"))
    self._lines.put(None)  # End of output: the process is gone.

  @property
  def alive(self):
    return self.result is None

  def _fail(self, why):
    self._stderr.seek(0)
    tail = (self._stderr.read().strip().splitlines() or ["no output"])[-1]
    self.result = {"error": f"{why}: {tail}"}
    self._process.kill()
    self._process.wait()

  def _expect(self, prefix, timeout_s):
    """The next line starting with prefix (after it); None if it failed."""
    deadline = time.monotonic() + timeout_s
    while True:
      try:
        line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
      except queue.Empty:
        self._fail(f"no answer within {timeout_s} s")
        return None
      if line is None:
        self._process.wait()
        self._fail(f"exit status {self._process.returncode}")
        return None
      if line.startswith(bench_worker.RESULT_PREFIX):
        # A worker that cannot run (torch not importable) ends at once.
        self.result = json.loads(line[len(bench_worker.RESULT_PREFIX):])
        self._process.wait()
        return None
      if line.startswith(prefix):
        return line[len(prefix):]

  def wait_ready(self):
    self._expect(timing.READY, WORKER_TIMEOUT_S)

  def repeat(self, record=True):
    """Times one repeat now; returns its images/sec (None if it failed).

    Args:
      record: add it to this worker's repeats (the rounds), or only return
        it (the repeat next to the epoch).
    """
    self._process.stdin.write(timing.REPEAT_COMMAND + "\n")
    self._process.stdin.flush()
    reply = self._expect(timing.REPEAT_PREFIX, WORKER_TIMEOUT_S)
    if reply is None:
      return None
    rates = json.loads(reply)
    if record:
      self.repeats.append(rates["images_per_sec"])
      self.cpu_repeats.append(rates["images_per_cpu_sec"])
    return rates["images_per_sec"]

  def kill(self):
    """Ends the process at once (the benchmark is stopping early)."""
    if self._process.poll() is None:
      self._process.kill()
      self._process.wait()

  def stop(self):
    """Ends the worker; returns its final dict with the repeats added."""
    if self.alive:
      try:
        self._process.stdin.write(timing.STOP_COMMAND + "\n")
        self._process.stdin.close()
      except OSError:
        pass
      # Stores the worker's RESULT line, or the error, in self.result.
      self._expect(bench_worker.RESULT_PREFIX, WORKER_TIMEOUT_S)
    self._stderr.close()
    return {**self.result, "repeats": self.repeats,
            "cpu_repeats": self.cpu_repeats}


def _run_matmul(size):
  """The matmul worker, run to its end; its result dict or {"error": ...}."""
  command = [sys.executable, "-m", "tf_raw.bench.worker",
             json.dumps({"task": "matmul", "size": size})]
  try:
    finished = subprocess.run(
        command, env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1"},
        capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, check=False)
  except subprocess.TimeoutExpired:
    return {"error": f"took more than {WORKER_TIMEOUT_S} s"}
  for line in reversed(finished.stdout.splitlines()):
    if line.startswith(bench_worker.RESULT_PREFIX):
      return json.loads(line[len(bench_worker.RESULT_PREFIX):])
  tail = (finished.stderr.strip().splitlines() or ["no output"])[-1]
  return {"error": f"exit status {finished.returncode}: {tail}"}


def _onednn_values(config):
  return {"both": ("1", "0"), "on": ("1",), "off": ("0",)}[config.onednn]


def _settings(candidate, config):
  """(setting name, extra spec, environment) for each way to run candidate."""
  framework, _ = bench_config.implementation(candidate)
  if framework == "pytorch":
    # Channels-last: PyTorch's advice for CPUs. (Channels-first was as fast
    # on a quiet machine, and each row costs a turn in every round.)
    return [("channels_last", {"channels_last": True}, {})]
  return [(f"oneDNN {'on' if value == '1' else 'off'}", {},
           {"TF_ENABLE_ONEDNN_OPTS": value})
          for value in _onednn_values(config)]


def start_workers(config):
  """Starts one process per (candidate, setting); all warm up at once."""
  workers = []
  for candidate in bench_config.CANDIDATES:
    if candidate not in config.candidates:
      continue
    framework, precision = bench_config.implementation(candidate)
    for setting, extra, environment in _settings(candidate, config):
      spec = {"task": "train", "candidate": framework, "precision": precision,
              "batch_size": config.batch_size,
              "warmup_steps": config.warmup_steps, "steps": config.steps,
              # The rounds, and one repeat after the epoch (tf_raw).
              "max_repeats": config.repeats + 1,
              "eval_images": config.eval_images, "channels_last": False,
              **extra}
      workers.append(Worker(candidate, setting, spec, environment))
  return workers


def time_in_rounds(workers, repeats, log):
  """Times `repeats` rounds; in each, every live worker one repeat in turn.

  The order rotates by one from round to round, so no candidate always
  follows the same one (or the pause between rounds).
  """
  for round_index in range(repeats):
    live = [worker for worker in workers if worker.alive]
    if not live:
      return
    shift = round_index % len(live)
    rates = []
    for worker in live[shift:] + live[:shift]:
      rate = worker.repeat()
      rates.append(f"{worker.name} {rate:,.0f}" if rate else
                   f"{worker.name} failed")
    log(f"  round {round_index + 1}/{repeats}: " + ", ".join(rates))


def candidate_entry(candidate, rows):
  """The JSON entry of one candidate from its rows (one per setting)."""
  _, precision = bench_config.implementation(candidate)
  timed = {setting: row for setting, row in rows.items() if row["repeats"]}
  if not timed:
    skipped = [row["skipped"] for row in rows.values() if "skipped" in row]
    if skipped:
      return {"precision": precision, "skipped": skipped[0]}
    return {"precision": precision, "error": "; ".join(
        f"{setting}: {row.get('error')}" for setting, row in rows.items())}
  for row in timed.values():
    row["images_per_sec"] = statistics.median(row["repeats"])
    row["images_per_cpu_sec"] = statistics.median(row["cpu_repeats"])
  best = max(timed, key=lambda setting: timed[setting]["images_per_sec"])
  return {"precision": precision, "setting": best, **timed[best],
          "settings": rows}


def _write_cifar_folder(folder, num_train, num_test):
  """Writes random images as an official cifar-10-batches-py folder."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tf_raw import data  # pylint: disable=g-import-not-at-top
  from tf_raw.tools import cifar_writer  # pylint: disable=g-import-not-at-top

  batches = os.path.join(folder, data.BATCHES_DIRNAME)
  os.makedirs(batches)
  rng = np.random.default_rng(0)
  per_file = -(-num_train // len(data.TRAIN_BATCHES))  # Ceiling division.
  for index, name in enumerate(data.TRAIN_BATCHES):
    count = max(0, min(per_file, num_train - index * per_file))
    cifar_writer.write_batch(
        os.path.join(batches, name),
        rng.integers(0, 256, (count, data.ROW_LENGTH), np.uint8),
        rng.integers(0, 10, count), f"training batch {index + 1} of 5")
  cifar_writer.write_batch(
      os.path.join(batches, data.TEST_BATCH),
      rng.integers(0, 256, (num_test, data.ROW_LENGTH), np.uint8),
      rng.integers(0, 10, num_test), "testing batch 1 of 1")
  cifar_writer.write_meta(os.path.join(batches, data.META_FILE))


def measure_epoch(config):
  """Two epochs of `python -m tf_raw.train` on CIFAR-sized data.

  Returns:
    dict: peak_rss_mb (the child's ru_maxrss), first_epoch_images_per_sec
    and images_per_sec (the two epoch lines it printed: the first includes
    tracing the step, the second is a run's steady epoch), wall_seconds
    (start to exit: imports, loading, both epochs, their checkpoints and two
    evaluations), or {"error": ...}.
  """
  with tempfile.TemporaryDirectory(prefix="tf_raw_bench_") as folder:
    # The data and the run side by side: tf_raw.train refuses a run folder
    # inside its --data_dir.
    data_dir = os.path.join(folder, "data")
    _write_cifar_folder(data_dir, config.epoch_images, config.eval_images)
    command = [sys.executable, "-m", "tf_raw.train", f"--data_dir={data_dir}",
               f"--model_dir={os.path.join(folder, 'run')}", "--epochs=2",
               f"--batch_size={config.batch_size}", "--print_predictions=false"]
    output_path = os.path.join(folder, "output.txt")
    start = time.monotonic()
    with open(output_path, "w") as output:
      child = subprocess.Popen(command, stdout=output,
                               stderr=subprocess.STDOUT)
      try:
        # wait4 returns the resource usage of this one child (ru_maxrss: its
        # peak resident set, in KiB on Linux).
        _, status, usage = _wait4_with_timeout(child, EPOCH_TIMEOUT_S)
      except TimeoutError:
        child.kill()
        child.wait()
        return {"error": f"took more than {EPOCH_TIMEOUT_S} s"}
    wall_seconds = time.monotonic() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    with open(output_path) as output:
      text = output.read()
  if child.returncode != 0:
    tail = (text.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit status {child.returncode}: {tail}"}
  # "epoch 2/2  loss 2.3026  2,345 images/sec  elapsed ...": one per epoch.
  rates = [float(rate.replace(",", "")) for rate in re.findall(
      r"^epoch \d+/\d+ .*?([\d,]+) images/sec", text, re.MULTILINE)]
  if len(rates) != 2:
    return {"error": f"expected 2 epoch lines, found {len(rates)}"}
  return {"peak_rss_mb": usage.ru_maxrss / 1024,
          "first_epoch_images_per_sec": rates[0], "images_per_sec": rates[1],
          "wall_seconds": wall_seconds, "train_images": config.epoch_images,
          "test_images": config.eval_images}


def _wait4_with_timeout(child, timeout_s):
  """os.wait4 on `child`, polling so that it can give up after timeout_s."""
  deadline = time.monotonic() + timeout_s
  while True:
    pid, status, usage = os.wait4(child.pid, os.WNOHANG)
    if pid:
      return pid, status, usage
    if time.monotonic() > deadline:
      raise TimeoutError
    time.sleep(0.2)


# ----------------------------------------------------------------- report --


def machine():
  """What the numbers were measured on."""
  model = platform.processor() or "unknown CPU"
  try:
    with open("/proc/cpuinfo") as cpuinfo:
      names = re.findall(r"model name\s*:\s*(.*)", cpuinfo.read())
      model = names[0] if names else model
  except OSError:
    pass

  def version(package):
    try:
      return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      return None

  return {"cpu": model, "cores": timing.cores(),
          "cpu_features": cpu_features.flags(),
          "native_bfloat16": cpu_features.native_bfloat16(),
          "load_average": os.getloadavg(),
          "platform": platform.platform(), "python": platform.python_version(),
          "tensorflow": version("tensorflow"), "keras": version("keras"),
          "torch": version("torch"), "numpy": version("numpy")}


FLOAT32_PEERS = ("tf1_graph", "keras_fit", "pytorch")
BFLOAT16_PEERS = ("keras_fit_bf16", "pytorch_bf16")


def compare(candidates, ours, peer, why):
  """ours / peer: the ratio of medians and the spread of per-round ratios."""
  ours_repeats, peer_repeats = (candidates[ours]["repeats"],
                                candidates[peer]["repeats"])
  rounds = [a / b for a, b in zip(ours_repeats, peer_repeats)]
  return {"ours": ours, "peer": peer, "why": why,
          "ratio_of_medians": (candidates[ours]["images_per_sec"] /
                               candidates[peer]["images_per_sec"]),
          # Per CPU-second of each process: what each would do with the
          # CPU to itself, if the load takes turns unevenly.
          "cpu_ratio_of_medians": (candidates[ours]["images_per_cpu_sec"] /
                                   candidates[peer]["images_per_cpu_sec"]),
          "round_ratios": rounds,
          "round_ratio_median": statistics.median(rounds),
          "round_ratio_min": min(rounds), "round_ratio_max": max(rounds)}


def summarize(results):
  """Adds GFLOP/s, % of matmul, and the ratios that answer the questions."""
  matmul = {"float32": results["matmul_gflops"],
            "mixed_bfloat16": results["matmul"].get("tf_bfloat16_gflops")}
  candidates = results["candidates"]
  timed = {name for name, entry in candidates.items()
           if "images_per_sec" in entry}
  for name in timed:
    entry = candidates[name]
    gflops = entry["images_per_sec"] * TRAIN_FLOPS_PER_IMAGE / 1e9
    entry["gflops"] = gflops
    limit = matmul[entry["precision"]]
    entry["percent_of_matmul"] = 100 * gflops / limit if limit else None

  def fastest(names):
    names = [name for name in names if name in timed]
    return max(names, key=lambda name: candidates[name]["images_per_sec"],
               default=None)

  comparisons = []
  float32_peer, bfloat16_peer = fastest(FLOAT32_PEERS), fastest(BFLOAT16_PEERS)
  wanted = [("tf_raw", float32_peer, "fastest float32 peer"),
            ("tf_raw_bf16", float32_peer, "fastest float32 peer"),
            ("tf_raw_bf16", bfloat16_peer, "fastest bfloat16 peer"),
            ("tf_raw_bf16", "tf_raw", "bfloat16 speed-up")]
  for ours, peer, why in wanted:
    if ours in timed and peer in timed:
      comparisons.append(compare(candidates, ours, peer, why))
  results["comparisons"] = comparisons
  epoch = results.get("epoch")
  if epoch and epoch.get("images_per_sec") and "tf_raw" in timed:
    epoch["step_rate"] = candidates["tf_raw"]["images_per_sec"]
    epoch["ratio_to_step_rate"] = epoch["images_per_sec"] / epoch["step_rate"]
    epoch["first_epoch_ratio_to_step_rate"] = (
        epoch["first_epoch_images_per_sec"] / epoch["step_rate"])


def _matmul_line(results):
  matmul = results["matmul"]
  if "error" in matmul:
    return f"matmul: not measured ({matmul['error']})."
  return (f"matmul {results['settings']['matmul_size']}^2: float32 "
          f"{results['matmul_gflops']:.1f} GFLOP/s (TensorFlow "
          f"{matmul['tf_gflops']:.1f}, numpy {matmul['numpy_gflops']:.1f}), "
          f"bfloat16 {matmul['tf_bfloat16_gflops']:.1f} GFLOP/s (TensorFlow); "
          f"training work {TRAIN_FLOPS_PER_IMAGE / 1e6:.1f} MFLOP/image.")


def _setting(entry):
  """The row's setting, with the oneDNN state its process reported."""
  onednn = entry.get("onednn")
  if onednn is None or not entry["setting"].startswith("oneDNN"):
    return entry["setting"]
  return "oneDNN " + ("on" if onednn else "off")


def bfloat16_note(native_bfloat16, candidates):
  """One line for a CPU without native bfloat16, else None."""
  if native_bfloat16 is not False:
    return None
  if any(bench_config.implementation(name)[1] != "float32"
         for name in candidates):
    return ("Note: this CPU has no native bfloat16 (AVX512_BF16 or AMX): the "
            "_bf16 rows are emulated, and may be much slower.")
  return ("Note: this CPU has no native bfloat16 (AVX512_BF16 or AMX), so the "
          "_bf16 rows are left out (emulated, they ran about 11x slower than "
          "float32 on an AVX2 EPYC); --candidates=... with them times them "
          "anyway.")


def table(results):
  """The results as lines of text."""
  info = results["machine"]
  load_start, load_end = info["load_average"], results["load_average_end"]
  settings = results["settings"]
  lines = [f"Machine: {info['cpu']}, {info['cores']} cores; "
           f"{cpu_features.describe(info['cpu_features'])}; TensorFlow "
           f"{info['tensorflow']}, Keras {info['keras']}, torch "
           f"{info['torch']}.",
           f"Load average (1 min) at start {load_start[0]:.1f}, at end "
           f"{load_end[0]:.1f} (2 or more on 2 cores: other work shared "
           "the CPU).",
           _matmul_line(results)]
  note = bfloat16_note(info["native_bfloat16"], settings["candidates"])
  if note:
    lines.append(note)
  lines += ["",
            f"{settings['repeats']} rounds; in each, every candidate ran "
            f"{settings['steps']} steps of {settings['batch_size']} in turn "
            "(order rotating), after a warm-up in its own process.",
            f"{'candidate':15s} {'setting':15s} {'images/sec':>10s} "
            f"{'(min-max)':>13s} {'GFLOP/s':>8s} {'% matmul':>8s} "
            f"{'img/CPU-s':>9s}"]
  for name, entry in results["candidates"].items():
    if "images_per_sec" not in entry:
      lines.append(f"{name:15s} {entry.get('skipped') or entry.get('error')}")
      continue
    low, high = min(entry["repeats"]), max(entry["repeats"])
    percent = entry["percent_of_matmul"]
    lines.append(
        f"{name:15s} {_setting(entry):15s} {entry['images_per_sec']:10,.0f} "
        f"{f'({low:,.0f}-{high:,.0f})':>13s} {entry['gflops']:8.1f} "
        + (f"{percent:7.1f}%" if percent is not None else "     n/a")
        + f" {entry['images_per_cpu_sec']:9,.0f}")
  lines.append("_bf16: float32 weights and optimizer, bfloat16 layers "
               "(--precision=mixed_bfloat16, Keras's mixed_bfloat16 policy, "
               "torch.autocast). % matmul: of the matmul rate at the row's "
               "precision. img/CPU-s: images per CPU-second of the process.")
  if results["comparisons"]:
    lines += ["", f"{'ratio':52s} of medians   per round: median (min-max)"
              "   img/CPU-s"]
  for comparison in results["comparisons"]:
    label = (f"{comparison['ours']} / {comparison['peer']} "
             f"({comparison['why']})")
    lines.append(
        f"{label:52s} {comparison['ratio_of_medians']:9.2f}x   "
        f"{comparison['round_ratio_median']:.2f}x "
        f"({comparison['round_ratio_min']:.2f}-"
        f"{comparison['round_ratio_max']:.2f})"
        f"{comparison['cpu_ratio_of_medians']:12.2f}x")
  lines.append("")
  tf_raw = results["candidates"].get("tf_raw", {})
  if "eval_seconds" in tf_raw:
    lines.append(f"Evaluation pass over {tf_raw['eval_images']:,} images "
                 f"(batches of {tf_raw['eval_batch_size']}): "
                 f"{tf_raw['eval_seconds']:.2f} s")
  epoch = results.get("epoch")
  if epoch and "error" not in epoch:
    lines.append(
        f"python -m tf_raw.train, 2 epochs of {epoch['train_images']:,} "
        f"images: {epoch['first_epoch_images_per_sec']:,.0f} images/sec "
        f"(epoch 1, tracing included), {epoch['images_per_sec']:,.0f} (epoch "
        f"2); peak RSS {epoch['peak_rss_mb']:,.0f} MB, "
        f"{epoch['wall_seconds']:.0f} s wall (loading, checkpoints and two "
        f"evaluations of {epoch['test_images']:,} images included)")
    if "ratio_to_step_rate" in epoch:
      after = epoch.get("step_rate_after")
      lines.append(
          f"epoch / step rate: {epoch['ratio_to_step_rate']:.2f}x for epoch 2"
          f", {epoch['first_epoch_ratio_to_step_rate']:.2f}x for epoch 1 "
          f"(tf_raw's step median {epoch['step_rate']:,.0f} images/sec in "
          "this run" + (f"; a repeat right after the epochs: {after:,.0f}, "
                        f"{epoch['images_per_sec'] / after:.2f}x for epoch 2)"
                        if after else ")"))
  elif epoch:
    lines.append(f"python -m tf_raw.train epoch: {epoch['error']}")
  return lines


def _time_workers(workers, config, results, log):
  """Warm-up, rounds, the epoch; returns {candidate: {setting: row}}."""
  log(f"Started {len(workers)} candidate processes; waiting for their "
      "warm-up (tracing, oneDNN primitives)")
  for worker in workers:
    worker.wait_ready()
  log(f"Timing {config.repeats} rounds of {config.steps} steps of "
      f"{config.batch_size}, candidates in turns")
  time_in_rounds(workers, config.repeats, log)
  tf_raw = next((worker for worker in workers
                 if worker.name == "tf_raw" and worker.alive), None)
  # Everything but tf_raw ends now; tf_raw waits (idle) through the epoch
  # for one more repeat right after it.
  rows = {}
  for worker in workers:
    if worker is not tf_raw:
      rows.setdefault(worker.name, {})[worker.setting] = worker.stop()
  if config.epoch:
    log(f"Running python -m tf_raw.train for two epochs of "
        f"{config.epoch_images:,} images")
    results["epoch"] = measure_epoch(config)
    if tf_raw is not None:
      results["epoch"]["step_rate_after"] = tf_raw.repeat(record=False)
  if tf_raw is not None:
    rows.setdefault("tf_raw", {})[tf_raw.setting] = tf_raw.stop()
  return rows


def run(config, log=print):
  """Runs every measurement; returns the results dict (see module doc)."""
  start = time.monotonic()
  results = {"machine": machine(), "settings": dataclasses.asdict(config),
             "train_flops_per_image": TRAIN_FLOPS_PER_IMAGE}
  note = bfloat16_note(results["machine"]["native_bfloat16"],
                       config.candidates)
  if note:
    log(note)
  log(f"Measuring matmul ({config.matmul_size}x{config.matmul_size}, "
      "float32 and bfloat16)")
  matmul = _run_matmul(config.matmul_size)
  results["matmul"] = matmul
  results["matmul_gflops"] = max(matmul.get("tf_gflops", 0.0),
                                 matmul.get("numpy_gflops", 0.0))
  workers = start_workers(config)
  try:
    rows = _time_workers(workers, config, results, log)
  finally:
    for worker in workers:  # Only left running after an error or Ctrl-C.
      worker.kill()
  results["candidates"] = {name: candidate_entry(name, rows[name])
                           for name in bench_config.CANDIDATES if name in rows}
  summarize(results)
  results["load_average_end"] = os.getloadavg()
  results["seconds"] = time.monotonic() - start
  return results


@cli.boundary
def main(argv):
  cli.reject_extra_arguments(argv)
  cli.set_tensorflow_defaults()
  config = bench_flags.to_config()
  results = run(config, log=lambda line: print(line, flush=True))
  print()
  print("\n".join(table(results)))
  print(f"(benchmark took {results['seconds']:.0f} s)")
  if config.json:
    with open(config.json, "w") as f:
      json.dump(results, f, indent=2)
      f.write("\n")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags_or_exit)
