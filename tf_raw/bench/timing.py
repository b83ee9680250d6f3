"""How every benchmark candidate is timed: in turns, on the parent's command.

The worker side of the interleaving (no TensorFlow here, so PyTorch's worker
uses it without importing TensorFlow). A worker process warms up, prints
READY, then waits: each "repeat" line on its stdin runs one timed repeat and
prints one line `REPEAT {"images_per_sec": ..., "images_per_cpu_sec": ...}`;
"stop" ends the series (the end of stdin, a parent gone, ends the process). The parent
(`tf_raw/bench/bench.py`) sends "repeat" to every candidate in turn, so all
of them are timed under the same machine load.
"""

import json
import os
import sys
import time

READY = "READY"
REPEAT_PREFIX = "REPEAT "
REPEAT_COMMAND = "repeat"
STOP_COMMAND = "stop"


class Turns:
  """Waits for the parent's turn, times the steps run in it, reports."""

  def __init__(self, batch_size, steps, commands=None, out=None):
    """Args:
      batch_size: images per step.
      steps: steps per timed repeat.
      commands: where the parent's lines come from (default: stdin).
      out: where the replies go (default: stdout).
    """
    self.batch_size = batch_size
    self.steps = steps
    self._commands = commands or sys.stdin
    self._out = out or sys.stdout
    self._start = None

  def _reply(self, line):
    self._out.write(line + "\n")
    self._out.flush()

  def ready(self):
    """Tells the parent the warm-up is done."""
    self._reply(READY)

  def next_turn(self):
    """Waits for the parent: True to time a repeat now, False to stop."""
    line = self._commands.readline()
    if not line:
      # End of stdin without "stop": the parent is gone (killed, Ctrl-C).
      # Nobody is left to report to, so leave now, skipping the final work.
      os._exit(1)  # pylint: disable=protected-access
    if line.strip() != REPEAT_COMMAND:
      return False
    self._start = (time.perf_counter(), time.process_time())
    return True

  def end_turn(self):
    """Reports the repeat that started at the last `next_turn`."""
    wall, cpu = (time.perf_counter() - self._start[0],
                 time.process_time() - self._start[1])
    images = self.steps * self.batch_size
    # Images per CPU-second counts every thread of this process: steadier
    # than wall time when other work shares the CPU.
    self._reply(REPEAT_PREFIX + json.dumps(
        {"images_per_sec": images / wall,
         "images_per_cpu_sec": images / max(cpu, 1e-9)}))

  def serve(self, run_steps, warmup_steps):
    """Warm-up, READY, then one repeat of `steps` steps per turn.

    Args:
      run_steps: callable(num_steps) that trains num_steps steps and returns
        only when they are done.
      warmup_steps: steps run first and not timed (tracing, oneDNN
        primitive creation, caches).
    """
    run_steps(warmup_steps)
    self.ready()
    while self.next_turn():
      run_steps(self.steps)
      self.end_turn()


def cores():
  """CPU cores this process may run on."""
  return len(os.sched_getaffinity(0))
