"""Flags of `python -m tf_raw.train`.

Each help line gives the unit and the original notebook's value. Defaults come
from `tf_raw.config.TrainConfig`, so flags and library cannot disagree.
`to_config()` turns the parsed flags into that frozen config, once.
"""

import dataclasses
import os

from absl import flags

from flags import common_flags
from tf_raw import config as config_lib

_D = config_lib.TrainConfig()  # The defaults.

# Data.
common_flags.define_data()
VALIDATION_SPLIT = flags.DEFINE_float(
    "validation_split", _D.validation_split,
    "With --data_dir=<your images> and no test/ folder: the fraction of each "
    "class held out for evaluation (a fixed seeded split), in (0, 1).",
    lower_bound=0.0, upper_bound=1.0)

# The notebook's recipe.
EPOCHS = flags.DEFINE_integer(
    "epochs", _D.epochs, "Passes over the training set. Notebook: 50.",
    lower_bound=0)
BATCH_SIZE = common_flags.define_batch_and_rate()["batch_size"]
DECAY = flags.DEFINE_float(
    "decay", _D.decay,
    "RMSProp decay (rho) of the mean-square moving average, in [0, 1). "
    "Notebook: 0.9.", lower_bound=0.0, upper_bound=1.0)
MOMENTUM = flags.DEFINE_float(
    "momentum", _D.momentum, "RMSProp momentum, in [0, 1). Notebook: 0.",
    lower_bound=0.0, upper_bound=1.0)
EPSILON = flags.DEFINE_float(
    "epsilon", _D.epsilon,
    "RMSProp epsilon, added inside the square root as TF1 does. "
    "Notebook: 1e-10.", lower_bound=0.0)
common_flags.define_keep_probs()
INIT_STDDEV = flags.DEFINE_float(
    "init_stddev", _D.init_stddev,
    "Standard deviation of the normal initialiser of every weight. "
    "Notebook: 0.01.", lower_bound=0.0)
EMA_DECAY = flags.DEFINE_float(
    "ema_decay", _D.ema_decay,
    "Evaluate with an exponential moving average of the weights with this "
    "decay per step, in [0, 1); 0 evaluates the raw weights. Notebook: 0 "
    "(raw weights).", lower_bound=0.0, upper_bound=1.0)
PRECISION = flags.DEFINE_enum(
    "precision", _D.precision, ["float32", "mixed_bfloat16"],
    "Number format of the layers. float32: everything in float32. "
    "mixed_bfloat16: float32 weights, optimizer and loss, bfloat16 "
    "convolutions, matmuls and activations (faster on CPUs with AVX512_BF16 "
    "or AMX, and on GPUs). Notebook: float32.")

# What the notebook left out.
common_flags.define_seed()
SHUFFLE = flags.DEFINE_bool(
    "shuffle", _D.shuffle,
    "Shuffle the training set every epoch (seeded). Notebook: no shuffle "
    "(--noshuffle).")
DROP_REMAINDER = flags.DEFINE_bool(
    "drop_remainder", _D.drop_remainder,
    "Skip the last partial batch of each epoch. Notebook: yes, it silently "
    "dropped the last 80 of 50,000 images (--drop_remainder).")
EVAL_EVERY = flags.DEFINE_integer(
    "eval_every", _D.eval_every,
    "Evaluate on the test set after epoch 0, every this many epochs, and at "
    "the end. Notebook: 10.", lower_bound=1)
EVAL_BATCH_SIZE = flags.DEFINE_integer(
    "eval_batch_size", _D.eval_batch_size,
    "Images per evaluation step (memory, not results). Notebook: all 10,000 "
    "in one batch.", lower_bound=1)
PRINT_PREDICTIONS = flags.DEFINE_bool(
    "print_predictions", _D.print_predictions,
    "Print the predicted test labels at each evaluation, as the notebook did.")

# Beyond the notebook: opt-in, off by default.
AUGMENT = flags.DEFINE_enum(
    "augment", _D.augment, ["none", "crop_flip"],
    "Training-time augmentation. none: the notebook's; crop_flip: a random "
    "32x32 crop of each image zero-padded by 4 pixels, mirrored left-right "
    "half the time (a draw per image and step; never at evaluation). "
    "Notebook: none.")
LR_SCHEDULE = flags.DEFINE_enum(
    "lr_schedule", _D.lr_schedule, ["constant", "cosine"],
    "Learning rate per step. constant: --learning_rate throughout (the "
    "notebook's); cosine: from --learning_rate down to 0 at the last step "
    "of --epochs. Notebook: constant.")

# Where the run lives.
MODEL_DIR = flags.DEFINE_string(
    "model_dir", _D.model_dir,
    "Folder for checkpoints and metrics.jsonl; a run restarted with the same "
    "folder continues where it stopped.")
CHECKPOINT_EVERY_STEPS = flags.DEFINE_integer(
    "checkpoint_every_steps", _D.checkpoint_every_steps,
    "Also checkpoint every this many training steps (0: only at the end of "
    "each epoch).", lower_bound=0)
MAX_TO_KEEP = flags.DEFINE_integer(
    "max_to_keep", _D.max_to_keep, "How many recent checkpoints to keep.",
    lower_bound=1)
LOG_EVERY_STEPS = flags.DEFINE_integer(
    "log_every_steps", _D.log_every_steps,
    "Write TensorBoard scalars (model_dir/train, model_dir/test) and, off a "
    "terminal, a progress line every this many steps, besides each epoch's "
    "end (0: only at epoch ends).", lower_bound=0)
DETERMINISTIC = flags.DEFINE_bool(
    "deterministic", _D.deterministic,
    "Make TensorFlow's kernels deterministic (slower), so a resumed run is "
    "bit-identical to an uninterrupted one.")
STEP_LOG = flags.DEFINE_bool(
    "step_log", _D.step_log,
    "Append a line per training step (step, epoch, batch and a checksum of "
    "its images' indices) to MODEL_DIR/steps.log, to check that interrupted "
    "and resumed runs skip and repeat nothing.")

STRATEGY = flags.DEFINE_enum(
    "strategy", _D.strategy, ["default", "mirrored", "multi_worker"],
    "Where the steps run (tf_raw/distribute.py). default: one device; "
    "mirrored: --replicas copies of the model on this machine (its GPUs, or "
    "logical CPU devices), each step's batch split between them; "
    "multi_worker: one process per worker, described by TF_CONFIG (python -m "
    "tf_raw.tools.launch starts them on one machine). Checkpoints work across "
    "strategies. Notebook: one device.")
REPLICAS = flags.DEFINE_integer(
    "replicas", _D.replicas,
    "--strategy=mirrored: how many replicas (GPUs, or logical CPU devices "
    "sharing this CPU's cores).", lower_bound=1)
COLLECTIVE_TIMEOUT = flags.DEFINE_float(
    "collective_timeout", _D.collective_timeout,
    "--strategy=multi_worker: seconds a worker waits for the others at each "
    "gradient all-reduce before the run stops with an error (0: forever).",
    lower_bound=0.0)

API = flags.DEFINE_enum(
    "api", _D.api, ["v2", "v1"],
    "Which implementation trains. v2: this project's TF2 code (tf.function, "
    "GradientTape, checkpoints and resume); v1: the notebook's own TF1 graph "
    "(tf.compat.v1 Session and feed_dict; same data, batches and output "
    "lines, no checkpoints; TF2-only flags are listed as ignored). "
    "Notebook: v1.")


for _name in ("decay", "momentum", "epsilon", "init_stddev", "ema_decay",
              "validation_split", "collective_timeout"):
  common_flags.register_finite(_name)
flags.register_validator(
    "decay", lambda v: v < 1.0, "--decay must be below 1 (0.9 is usual).")
flags.register_validator(
    "ema_decay", lambda v: v < 1.0,
    "--ema_decay must be below 1 (0.999 averages over about 1,000 steps; 0 "
    "turns averaging off).")
flags.register_validator(
    "momentum", lambda v: v < 1.0, "--momentum must be below 1.")
del _name
common_flags.register_not_empty("model_dir")
common_flags.register_checkpoint_folder("model_dir")


def _inside(path, folder):
  """True if `path` is `folder` or lies below it (after links and ~)."""
  path = os.path.realpath(os.path.expanduser(path))
  folder = os.path.realpath(os.path.expanduser(folder))
  return os.path.commonpath([path, folder]) == folder


# The run's own train/ and test/ event folders would make --data_dir look like
# an image folder on the next start (and the run could read its own files).
flags.register_multi_flags_validator(
    ["data_dir", "model_dir"],
    lambda values: not (values["data_dir"] and values["model_dir"] and (
        _inside(values["model_dir"], values["data_dir"])
        or _inside(values["data_dir"], values["model_dir"]))),
    "--data_dir and --model_dir must not be the same folder or inside one "
    "another: the run's files would be read as data; put the run elsewhere.")

flags.register_multi_flags_validator(
    ["api", "augment", "lr_schedule"],
    lambda values: values["api"] != "v1" or (
        values["augment"] == "none" and values["lr_schedule"] == "constant"),
    "--api=v1 trains the notebook's TF1 graph, which has no --augment or "
    "--lr_schedule; leave them at none and constant, or use --api=v2.")

flags.register_multi_flags_validator(
    ["strategy", "replicas"],
    lambda values: values["strategy"] == "mirrored" or values["replicas"] == 1,
    "--replicas is the number of mirrored replicas; add --strategy=mirrored, "
    "or drop --replicas (multi_worker takes one replica per worker).")

flags.register_multi_flags_validator(
    ["api", "strategy"],
    lambda values: values["api"] == "v2" or values["strategy"] == "default",
    "--api=v1 runs the notebook's TF1 graph on one device; drop --strategy or "
    "use --api=v2.")

flags.register_multi_flags_validator(
    ["api", "precision"],
    lambda values: values["api"] == "v2" or values["precision"] == "float32",
    "--api=v1 runs the notebook's TF1 graph in float32 only; drop "
    "--precision or use --api=v2.")

# The shared flags count as this module's own (--helpshort, flags.txt).
flags.adopt_module_key_flags(common_flags)


def to_config():
  """Returns the parsed flags as a frozen `TrainConfig`."""
  values = {field.name: flags.FLAGS[field.name].value
            for field in dataclasses.fields(config_lib.TrainConfig)}
  for name in ("data_dir", "cache_dir", "model_dir"):  # "~/x": $HOME/x.
    values[name] = common_flags.expand_path(values[name])
  return config_lib.TrainConfig(**values)
