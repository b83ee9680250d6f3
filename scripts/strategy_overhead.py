r"""The cost of each tf.distribute strategy on this machine, in turns.

    .venv/bin/python scripts/strategy_overhead.py --rounds=3

Trains the default recipe on synthetic data (6,400 images, 2 epochs) once per
strategy per round, the strategies taking turns (A B C D A B C D ...) so
each sees the same machine state, and prints each one's median images/sec of
the second epoch (the first includes tracing) and its ratio to the default
strategy's. On a CPU the replicas share its cores: this measures what the
splitting, the all-reduce and (for workers) gRPC cost, not a speed-up.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = ["--dataset=synthetic", "--synthetic_train_size=6400",
       "--synthetic_test_size=500", "--epochs=2", "--noprint_predictions",
       "--checkpoint_every_steps=0"]
STRATEGIES = {
    "default": ["-m", "tf_raw.train"],
    "mirrored x1": ["-m", "tf_raw.train", "--strategy=mirrored",
                    "--replicas=1"],
    "mirrored x2": ["-m", "tf_raw.train", "--strategy=mirrored",
                    "--replicas=2"],
    "multi_worker x2": ["-m", "tf_raw.tools.launch", "--workers=2", "--"],
}


def second_epoch_rate(model_dir):
  with open(os.path.join(model_dir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  return [r["images_per_sec"] for r in records if r["kind"] == "epoch"][1]


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--rounds", type=int, default=3)
  args = parser.parse_args()
  rates = {name: [] for name in STRATEGIES}
  with tempfile.TemporaryDirectory() as folder:
    for round_ in range(args.rounds):
      for name, command in STRATEGIES.items():
        model_dir = os.path.join(folder, f"{name}-{round_}".replace(" ", "_"))
        subprocess.run([sys.executable, *command, *RUN,
                        f"--model_dir={model_dir}"], cwd=ROOT, check=True,
                       capture_output=True)
        rates[name].append(second_epoch_rate(model_dir))
        print(f"round {round_ + 1} {name}: {rates[name][-1]:,.0f} images/sec",
              flush=True)
  base = statistics.median(rates["default"])
  print("\n| strategy | images/sec (median) | runs | ratio to default |")
  print("|---|---|---|---|")
  for name, values in rates.items():
    median = statistics.median(values)
    print(f"| {name} | {median:,.0f} | "
          f"{', '.join(f'{v:,.0f}' for v in values)} | {median / base:.2f} |")


if __name__ == "__main__":
  main()
