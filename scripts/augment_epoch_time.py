r"""Time per epoch with and without augmentation, in turns, on real data.

    .venv/bin/python scripts/augment_epoch_time.py --data_dir=FOLDER --rounds=2

Trains 2 epochs of each recipe per round, the recipes taking turns, and
prints each one's median images/sec of the second epoch and seconds per
epoch of FOLDER's training images: the notebook's recipe, the same with
`--augment=crop_flip` (what the augmentation alone costs), and the recipe
that reached 0.80 (README, "Beyond the notebook"), whose batches of 64 take
twice the steps.
"""

import argparse
import statistics

from in_turns import print_table, time_in_turns

RECIPES = {
    "default": ["-m", "tf_raw.train"],
    "crop_flip": ["-m", "tf_raw.train", "--augment=crop_flip"],
    "0.80 recipe": ["-m", "tf_raw.train", "--augment=crop_flip",
                    "--lr_schedule=cosine", "--keep_prob_conv=1.0",
                    "--keep_prob_hidden=0.8", "--batch_size=64"],
}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--data_dir", required=True,
                      help="a CIFAR-10 folder (the official batch files)")
  parser.add_argument("--train_images", type=int, default=40_000,
                      help="how many training images FOLDER holds")
  parser.add_argument("--rounds", type=int, default=2)
  args = parser.parse_args()
  rates = time_in_turns(
      RECIPES, [f"--data_dir={args.data_dir}", "--epochs=2",
                "--noprint_predictions", "--checkpoint_every_steps=0"],
      args.rounds)
  print_table(rates, "default", what="recipe")
  for name, values in rates.items():
    seconds = args.train_images / statistics.median(values)
    print(f"{name}: {seconds:.1f} s per epoch of {args.train_images:,} images")


if __name__ == "__main__":
  main()
