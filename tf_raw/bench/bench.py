r"""How fast tf_raw trains, beside its peers and this machine's limit.

    python -m tf_raw.bench [--json=bench.json] [--quick]      (make bench)

In one run, on one machine and the same data shapes (batch 128 of uint8
32x32x3 images, random values), it times:

1. tf_raw: `loop.Trainer`'s own step, called as `python -m tf_raw.train`
   calls it (`Trainer.train_batches`);
2. tf1_graph: the 2018 notebook's graph through `tf.compat.v1` (Session,
   placeholders, feed_dict, RMSPropOptimizer);
3. keras_fit: the same network as a `keras.Sequential` and `model.fit`;
4. pytorch: the same network in PyTorch, if torch is importable.

Each runs in its own process (`tf_raw/bench/worker.py`), at its best
reasonable setting: the TensorFlow ones with TF_ENABLE_ONEDNN_OPTS both on and
off (the faster counts), PyTorch both channels-first and channels-last with
torch.set_num_threads(cores). After a warm-up, each does several timed
repeats; the table shows their median in images/sec and, with 67.9 MFLOP of
training work per image (`TRAIN_FLOPS_PER_IMAGE`), as a share of the float32
matmul rate measured in the same run (the best of TensorFlow's and numpy's).

Then it runs `python -m tf_raw.train` itself for one full-size epoch (50,000
synthetic images written in the official CIFAR-10 format, 10,000 test
images), and reports that process's peak resident memory (ru_maxrss), its
end-to-end images/sec (checkpoints and data loading included) and wall time;
and the time of one evaluation pass over 10,000 images.
"""

import dataclasses
import importlib.metadata
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

from flags import bench_flags  # pylint: disable=g-bad-import-order
from flags import cli
from tf_raw.bench import config as bench_config
from tf_raw.bench import timing
from tf_raw.bench import worker as bench_worker

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


def _run_worker(spec, environment):
  """Runs one `bench_worker` task; returns its result dict or {"error": ...}."""
  command = [sys.executable, "-m", "tf_raw.bench.worker", json.dumps(spec)]
  try:
    finished = subprocess.run(
        command, env={**os.environ, **environment}, capture_output=True,
        text=True, timeout=WORKER_TIMEOUT_S, check=False)
  except subprocess.TimeoutExpired:
    return {"error": f"took more than {WORKER_TIMEOUT_S} s"}
  for line in reversed(finished.stdout.splitlines()):
    if line.startswith(bench_worker.RESULT_PREFIX):
      return json.loads(line[len(bench_worker.RESULT_PREFIX):])
  tail = (finished.stderr.strip().splitlines() or ["no output"])[-1]
  return {"error": f"exit status {finished.returncode}: {tail}"}


def _onednn_settings(config):
  return {"best": ("1", "0"), "on": ("1",), "off": ("0",)}[config.onednn]


def _variants(candidate, config):
  """(setting name, extra spec, environment) for each way to run candidate."""
  if candidate == "pytorch":
    layouts = (True,) if config.quick else (True, False)
    return [(f"channels_{'last' if last else 'first'}",
             {"channels_last": last}, {})
            for last in layouts]
  return [(f"oneDNN {'on' if value == '1' else 'off'}", {},
           {"TF_ENABLE_ONEDNN_OPTS": value})
          for value in _onednn_settings(config)]


def measure_candidate(candidate, config, log):
  """Times every variant of `candidate`; returns its JSON entry."""
  variants = {}
  for setting, extra, environment in _variants(candidate, config):
    spec = {"task": "train", "candidate": candidate,
            "batch_size": config.batch_size,
            "warmup_steps": config.warmup_steps, "steps": config.steps,
            "repeats": config.repeats, "eval_images": config.eval_images,
            **extra}
    start = time.monotonic()
    result = _run_worker(spec, environment)
    result["seconds"] = round(time.monotonic() - start, 1)
    if "repeats" in result:
      result["images_per_sec"] = statistics.median(result["repeats"])
      result["images_per_cpu_sec"] = statistics.median(result["cpu_repeats"])
    log(f"  {candidate:10s} {setting:20s} " + (
        f"{result['images_per_sec']:8,.0f} images/sec"
        if "images_per_sec" in result else
        result.get("skipped") or result.get("error")))
    variants[setting] = result
    if "skipped" in result:
      return {"skipped": result["skipped"]}
  timed = {name: r for name, r in variants.items() if "images_per_sec" in r}
  if not timed:
    return {"error": "; ".join(f"{name}: {r.get('error')}"
                               for name, r in variants.items())}
  best = max(timed, key=lambda name: timed[name]["images_per_sec"])
  entry = {"images_per_sec": timed[best]["images_per_sec"], "setting": best,
           "images_per_cpu_sec": timed[best]["images_per_cpu_sec"],
           "repeats": timed[best]["repeats"], "variants": variants}
  for key in ("eval_seconds", "eval_images", "eval_batch_size"):
    if key in timed[best]:
      entry[key] = timed[best][key]
  return entry


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
  """One epoch of `python -m tf_raw.train` on CIFAR-sized data.

  Returns:
    dict: peak_rss_mb (the child's ru_maxrss), images_per_sec (the epoch
    line it printed), wall_seconds (start to exit: imports, loading, the
    epoch, its checkpoints and one evaluation), or {"error": ...}.
  """
  with tempfile.TemporaryDirectory(prefix="tf_raw_bench_") as folder:
    # The data and the run side by side: tf_raw.train refuses a run folder
    # inside its --data_dir.
    data_dir = os.path.join(folder, "data")
    _write_cifar_folder(data_dir, config.epoch_images, config.eval_images)
    command = [sys.executable, "-m", "tf_raw.train", f"--data_dir={data_dir}",
               f"--model_dir={os.path.join(folder, 'run')}", "--epochs=1",
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
  rates = re.findall(r"([\d,]+) images/sec", text)
  return {"peak_rss_mb": usage.ru_maxrss / 1024,
          "images_per_sec": float(rates[-1].replace(",", "")) if rates else None,
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
          "platform": platform.platform(), "python": platform.python_version(),
          "tensorflow": version("tensorflow"), "keras": version("keras"),
          "torch": version("torch"), "numpy": version("numpy")}


def summarize(results):
  """Adds GFLOP/s, % of matmul and speed-up over the fastest peer."""
  matmul = results["matmul_gflops"]
  candidates = results["candidates"]
  for entry in candidates.values():
    if "images_per_sec" in entry:
      gflops = entry["images_per_sec"] * TRAIN_FLOPS_PER_IMAGE / 1e9
      entry["gflops"] = gflops
      entry["percent_of_matmul"] = 100 * gflops / matmul if matmul else None
  peers = {name: entry["images_per_sec"] for name, entry in candidates.items()
           if name != "tf_raw" and "images_per_sec" in entry}
  ours = candidates.get("tf_raw", {}).get("images_per_sec")
  if peers and ours:
    fastest = max(peers, key=peers.get)
    results["tf_raw_vs_fastest_peer"] = {
        "peer": fastest, "speedup": ours / peers[fastest],
        "cpu_speedup": (candidates["tf_raw"]["images_per_cpu_sec"] /
                        candidates[fastest]["images_per_cpu_sec"])}


def _matmul_line(results):
  matmul = results["matmul"]
  if "error" in matmul:
    return f"float32 matmul: not measured ({matmul['error']})."
  return (f"float32 matmul: {results['matmul_gflops']:.1f} GFLOP/s "
          f"(TensorFlow {matmul['tf_gflops']:.1f}, numpy "
          f"{matmul['numpy_gflops']:.1f}); training work "
          f"{TRAIN_FLOPS_PER_IMAGE / 1e6:.1f} MFLOP/image.")


def table(results):
  """The results as lines of text."""
  lines = [f"Machine: {results['machine']['cpu']}, "
           f"{results['machine']['cores']} cores; TensorFlow "
           f"{results['machine']['tensorflow']}, torch "
           f"{results['machine']['torch']}.",
           _matmul_line(results), "",
           f"{'candidate':11s} {'setting':16s} {'images/sec':>10s} "
           f"{'(min-max)':>13s} {'GFLOP/s':>8s} {'% matmul':>8s} "
           f"{'img/CPU-s':>9s}"]
  for name, entry in results["candidates"].items():
    if "images_per_sec" not in entry:
      lines.append(f"{name:11s} {entry.get('skipped') or entry.get('error')}")
      continue
    low, high = min(entry["repeats"]), max(entry["repeats"])
    percent = entry["percent_of_matmul"]
    lines.append(
        f"{name:11s} {entry['setting']:16s} {entry['images_per_sec']:10,.0f} "
        f"{f'({low:,.0f}-{high:,.0f})':>13s} {entry['gflops']:8.1f} "
        + (f"{percent:7.1f}%" if percent is not None else "     n/a")
        + f" {entry['images_per_cpu_sec']:9,.0f}")
  lines.append("img/CPU-s: images per CPU-second of the candidate's process "
               "(steadier than images/sec when other work shares the CPU).")
  lines.append("")
  versus = results.get("tf_raw_vs_fastest_peer")
  if versus:
    lines.append(f"tf_raw / fastest peer ({versus['peer']}): "
                 f"{versus['speedup']:.2f}x in images/sec, "
                 f"{versus['cpu_speedup']:.2f}x in images per CPU-second")
  tf_raw = results["candidates"].get("tf_raw", {})
  if "eval_seconds" in tf_raw:
    lines.append(f"Evaluation pass over {tf_raw['eval_images']:,} images "
                 f"(batches of {tf_raw['eval_batch_size']}): "
                 f"{tf_raw['eval_seconds']:.2f} s")
  epoch = results.get("epoch")
  if epoch and "error" not in epoch:
    lines.append(
        f"python -m tf_raw.train, 1 epoch of {epoch['train_images']:,} "
        f"images: peak RSS {epoch['peak_rss_mb']:,.0f} MB, "
        f"{epoch['images_per_sec'] or 0:,.0f} images/sec, "
        f"{epoch['wall_seconds']:.0f} s wall (loading, checkpoints and one "
        f"evaluation of {epoch['test_images']:,} images included)")
  elif epoch:
    lines.append(f"python -m tf_raw.train epoch: {epoch['error']}")
  return lines


def run(config, log=print):
  """Runs every measurement; returns the results dict (see module doc)."""
  start = time.monotonic()
  results = {"machine": machine(), "settings": dataclasses.asdict(config),
             "train_flops_per_image": TRAIN_FLOPS_PER_IMAGE}
  log(f"Measuring float32 matmul ({config.matmul_size}x{config.matmul_size})")
  matmul = _run_worker({"task": "matmul", "size": config.matmul_size},
                       {"TF_ENABLE_ONEDNN_OPTS": "1"})
  results["matmul"] = matmul
  results["matmul_gflops"] = max(matmul.get("tf_gflops", 0.0),
                                 matmul.get("numpy_gflops", 0.0))
  log("Timing training steps (median of "
      f"{config.repeats} x {config.steps} steps of {config.batch_size})")
  results["candidates"] = {
      candidate: measure_candidate(candidate, config, log)
      for candidate in bench_config.CANDIDATES
      if candidate in config.candidates}
  if config.epoch:
    log(f"Running python -m tf_raw.train for one epoch of "
        f"{config.epoch_images:,} images")
    results["epoch"] = measure_epoch(config)
  summarize(results)
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
