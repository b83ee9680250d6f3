"""Flags of `python -m tf_raw.tools.launch` (the training flags come after `--`)."""

from absl import flags

WORKERS = flags.DEFINE_integer(
    "workers", 2,
    "How many worker processes to start on this machine, each with its own "
    "TF_CONFIG on a loopback port; worker 0 is the chief.", lower_bound=1)
HOST = flags.DEFINE_string(
    "host", "127.0.0.1",
    "Address the workers listen on (one port each, chosen free).")
GRACE_SECONDS = flags.DEFINE_float(
    "grace_seconds", 90.0,
    "After one worker exits with an error, how long the others get to stop "
    "on their own (they notice within --collective_timeout) before they "
    "are killed.", lower_bound=0.0)
