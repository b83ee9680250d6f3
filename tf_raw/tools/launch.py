r"""Starts a multi-worker run on this machine: `python -m tf_raw.tools.launch`.

    python -m tf_raw.tools.launch --workers=2 -- --model_dir=runs/two_workers

starts `python -m tf_raw.train --strategy=multi_worker <the flags after -->`
once per worker, each with its own `TF_CONFIG`, the JSON every
MultiWorkerMirroredStrategy process reads to find the others:

    {"cluster": {"worker": ["127.0.0.1:40401", "127.0.0.1:40402"]},
     "task": {"type": "worker", "index": 1}}

On several machines you start the same training command on each machine
yourself, with the machines' addresses in "worker" and each its own index.

The chief (worker 0) prints the run's lines and owns --model_dir; the other
workers print only their errors, prefixed "worker N:". Ctrl-C or SIGTERM
here is passed on to every worker once: they agree on the step to stop
after, the chief saves it, and the same command continues the run. If one
worker fails, the others stop within --collective_timeout (they would
otherwise wait for it); this program then ends them after --grace_seconds
and exits with the failed worker's status.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from absl import app
from absl import flags

from flags import launch_flags  # pylint: disable=g-bad-import-order
from flags import cli

flags.adopt_module_key_flags(launch_flags)


def free_ports(host, count):
  """`count` distinct ports on `host` that were free a moment ago."""
  sockets = []
  try:
    for _ in range(count):
      sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
      sock.bind((host, 0))
      sockets.append(sock)
    return [sock.getsockname()[1] for sock in sockets]
  finally:
    for sock in sockets:
      sock.close()


def tf_config(addresses, index):
  """The TF_CONFIG of worker `index` in a cluster of `addresses`."""
  return json.dumps({"cluster": {"worker": addresses},
                     "task": {"type": "worker", "index": index}})


def _prefix_lines(stream, prefix):
  for line in iter(stream.readline, ""):
    print(prefix + line, end="", file=sys.stderr, flush=True)


def start_workers(train_args, count, host):
  """Starts the workers; returns their `subprocess.Popen`s, chief first."""
  addresses = [f"{host}:{port}" for port in free_ports(host, count)]
  command = [sys.executable, "-m", "tf_raw.train", "--strategy=multi_worker",
             *train_args]
  processes = []
  for index in range(count):
    env = dict(os.environ, TF_CONFIG=tf_config(addresses, index))
    chief = index == 0
    # Own process groups: a Ctrl-C on the terminal reaches this program
    # only, which passes it on once (a second one would stop at once).
    process = subprocess.Popen(
        command, env=env, start_new_session=True,
        stdout=None if chief else subprocess.PIPE,
        stderr=None if chief else subprocess.STDOUT,
        text=None if chief else True)
    if not chief:
      threading.Thread(target=_prefix_lines, daemon=True,
                       args=(process.stdout, f"worker {index}: ")).start()
    processes.append(process)
  return processes


def wait_for(processes, grace_seconds):
  """Waits for every worker; returns the exit status of the run.

  0 when all succeeded; otherwise the first failed worker's status, after
  the others stopped or were killed `grace_seconds` after that failure.
  """
  failed_at, status = None, 0
  while any(process.poll() is None for process in processes):
    for index, process in enumerate(processes):
      code = process.poll()
      if code not in (None, 0) and failed_at is None:
        failed_at, status = time.monotonic(), code
        print(f"launch: worker {index} exited with status {code}; waiting up "
              f"to {grace_seconds:g} s for the others to stop.",
              file=sys.stderr, flush=True)
    if failed_at is not None and time.monotonic() - failed_at > grace_seconds:
      for process in processes:
        if process.poll() is None:
          process.kill()
      break
    time.sleep(0.2)
  codes = [process.wait() for process in processes]
  status = status or next((code for code in codes if code), 0)
  return 128 - status if status < 0 else status  # Killed by a signal: 128+N.


@cli.boundary
def main(argv):
  train_args = argv[1:]  # absl stops at "--": the rest is train's flags.
  if any(arg.startswith("--strategy") for arg in train_args):
    cli.usage_error(argv, "the workers train with --strategy=multi_worker; "
                    "leave --strategy out of the training flags")
  processes = start_workers(train_args, launch_flags.WORKERS.value,
                            launch_flags.HOST.value)

  def pass_on(signum, frame):
    del frame
    for process in processes:
      if process.poll() is None:
        process.send_signal(signum)

  signal.signal(signal.SIGINT, pass_on)
  signal.signal(signal.SIGTERM, pass_on)
  sys.exit(wait_for(processes, launch_flags.GRACE_SECONDS.value))


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags_or_exit)
