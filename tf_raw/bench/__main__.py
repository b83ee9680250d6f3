"""`python -m tf_raw.bench`: the benchmark program (see bench.py)."""

from absl import app
from absl import flags

from flags import bench_flags  # pylint: disable=g-bad-import-order
from flags import cli
from tf_raw.bench import bench

# Show the benchmark's flags in this program's --helpshort.
flags.adopt_module_key_flags(bench_flags)

if __name__ == "__main__":
  app.run(bench.main, flags_parser=cli.parse_flags_or_exit)
