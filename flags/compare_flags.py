"""Flags of `python -m tf_raw.tf1.compare` (the TF1 graph beside the TF2 code).

Data flags mean what they mean for `python -m tf_raw.train`; defaults come from
`tf_raw.config.TrainConfig` except where comparing needs otherwise (synthetic
data, dropout off). `to_config()` returns a frozen `config.CompareConfig`.
"""

from absl import flags

from flags import common_flags
from tf_raw import config as config_lib

STEPS = flags.DEFINE_integer(
    "steps", 50, "Training steps to run both implementations for.",
    lower_bound=1)
TOLERANCE = flags.DEFINE_float(
    "tolerance", 1e-6,
    "Largest absolute difference allowed between the two losses at any step, "
    "and between any two weights or RMSProp slots after it; above it the "
    "program exits 1. 0 demands bit-identical results.", lower_bound=0.0)
common_flags.register_finite("tolerance")
TRAP = flags.DEFINE_enum(
    "trap", "none", ["none", "keras_rmsprop"],
    "Put a porting mistake into the TF2 side, to see what it does. "
    "keras_rmsprop: start RMSProp's mean square at zeros with epsilon 1e-7, "
    "as Keras's RMSprop does, instead of TF1's ones and 1e-10.")

# The data and the recipe, as for tf_raw.train (synthetic data by default).
_SHARED = {
    **common_flags.define_data(dataset="synthetic"),
    **common_flags.define_batch_and_rate(),
    "seed": common_flags.define_seed(
        "Seed of the shared initial weights and of the data order (and of "
        "each side's dropout)."),
    **common_flags.define_keep_probs(
        1.0, 1.0, note=(" Default here 1 (off): TF1's stateful and TF2's "
                        "stateless dropout draw different masks, so with "
                        "dropout on the two runs are expected to diverge.")),
}


# The shared flags count as this module's own (--helpshort, flags.txt).
flags.adopt_module_key_flags(common_flags)


def to_config():
  """Returns the parsed flags as a frozen `config.CompareConfig`."""
  values = {name: holder.value for name, holder in _SHARED.items()}
  for name in ("data_dir", "cache_dir"):  # "~/x": $HOME/x.
    values[name] = common_flags.expand_path(values[name])
  train = config_lib.TrainConfig(**values)
  return config_lib.CompareConfig(train=train, steps=STEPS.value,
                                  tolerance=TOLERANCE.value, trap=TRAP.value)
