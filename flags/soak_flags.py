"""Flags of `python -m tf_raw.run_folder.soak` (see that module for what it checks)."""

import dataclasses

from absl import flags

RESTARTS = flags.DEFINE_integer(
    "restarts", 120,
    "In-process restarts: fresh Trainers, each stopped by a real SIGINT or "
    "SIGTERM after 1 to 8 steps.", lower_bound=1)
KILLS = flags.DEFINE_integer(
    "kills", 10,
    "Subprocess runs of python -m tf_raw.train killed with SIGKILL after 2 to "
    "8 steps (each costs a TensorFlow start-up, seconds).", lower_bound=0)
WORK_DIR = flags.DEFINE_string(
    "work_dir", None,
    "Where the runs go; default: a temporary folder, removed afterwards.")
SEED = flags.DEFINE_integer(
    "seed", 0, "Seed of the runs and of the restart schedule.", lower_bound=0)


@dataclasses.dataclass(frozen=True)
class SoakConfig:
  restarts: int
  kills: int
  work_dir: str
  seed: int


def to_config():
  """The parsed flags as a frozen `SoakConfig`."""
  return SoakConfig(restarts=RESTARTS.value, kills=KILLS.value,
                    work_dir=WORK_DIR.value, seed=SEED.value)
