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

from in_turns import print_table, time_in_turns

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


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--rounds", type=int, default=3)
  args = parser.parse_args()
  print_table(time_in_turns(STRATEGIES, RUN, args.rounds), "default")


if __name__ == "__main__":
  main()
