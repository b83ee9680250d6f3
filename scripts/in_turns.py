"""Time several `python -m tf_raw...` training commands in turns.

The shared half of `strategy_overhead.py` and `augment_epoch_time.py`: each
round runs every candidate once, one after another (A B C A B C ...), so each
sees the same machine state, and reads the images/sec of the run's second
epoch from its metrics.jsonl (the first epoch includes tracing).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def second_epoch_rate(model_dir):
  with open(os.path.join(model_dir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  return [r["images_per_sec"] for r in records if r["kind"] == "epoch"][1]


def time_in_turns(candidates, run_args, rounds):
  """{name: [images/sec per round]} for {name: python arguments}."""
  rates = {name: [] for name in candidates}
  with tempfile.TemporaryDirectory() as folder:
    for round_ in range(rounds):
      for name, command in candidates.items():
        model_dir = os.path.join(folder, f"{name}-{round_}".replace(" ", "_"))
        subprocess.run([sys.executable, *command, *run_args,
                        f"--model_dir={model_dir}"], cwd=ROOT, check=True,
                       capture_output=True)
        rates[name].append(second_epoch_rate(model_dir))
        print(f"round {round_ + 1} {name}: {rates[name][-1]:,.0f} images/sec",
              flush=True)
  return rates


def print_table(rates, base_name, what="strategy"):
  """A Markdown table: median, every run, ratio to `base_name`'s median."""
  base = statistics.median(rates[base_name])
  print(f"\n| {what} | images/sec (median) | runs | ratio to {base_name} |")
  print("|---|---|---|---|")
  for name, values in rates.items():
    median = statistics.median(values)
    print(f"| {name} | {median:,.0f} | "
          f"{', '.join(f'{v:,.0f}' for v in values)} | {median / base:.2f} |")
