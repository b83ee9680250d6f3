"""How every benchmark candidate is timed (no TensorFlow, so PyTorch's worker
can use it without importing TensorFlow)."""

import os
import time


def time_repeats(run_steps, batch_size, warmup_steps, steps, repeats):
  """Times `run_steps(steps)` `repeats` times after one untimed warm-up.

  Args:
    run_steps: callable(num_steps) that trains num_steps steps and returns
      only when they are done.
    batch_size: images per step.
    warmup_steps: steps run first and not timed.
    steps: steps per timed repeat.
    repeats: how many timed repeats.

  Returns:
    {"repeats": images/sec per repeat (wall clock), "cpu_repeats": images
    per CPU-second of this process per repeat (all its threads; steadier
    than wall time on a busy machine)}.
  """
  run_steps(warmup_steps)
  rates, cpu_rates = [], []
  for _ in range(repeats):
    start, cpu_start = time.perf_counter(), time.process_time()
    run_steps(steps)
    rates.append(steps * batch_size / (time.perf_counter() - start))
    cpu_rates.append(steps * batch_size / (time.process_time() - cpu_start))
  return {"repeats": rates, "cpu_repeats": cpu_rates}


def cores():
  """CPU cores this process may run on."""
  return len(os.sched_getaffinity(0))
