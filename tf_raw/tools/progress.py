"""Progress within an epoch: a redrawn bar on a terminal, plain lines in a log.

    progress = Progress(sys.stdout, plain_every_steps=100)
    trainer = loop.Trainer(config, dataset, out=progress.print_line,
                               hooks=[progress])

On a terminal (`stream.isatty()`), one line is redrawn in place with "\\r":

    epoch 3/50 [########............]  160/391  1,234 images/sec

and every line the trainer prints first wipes the bar, so bar and log never
share a line. Anywhere else (a file, a pipe, CI) nothing is redrawn and no
"\\r" is written: one plain line every `plain_every_steps` steps instead.

Only Python numbers are used (the step count and the clock), never a tensor,
so showing progress never waits for the device.
"""

import time

from tf_raw import loop

_BAR_WIDTH = 20
_REDRAW_SECONDS = 0.1  # At most ten redraws a second.
_CLEAR_LINE = "\r\033[K"  # Carriage return, then erase to the end of line.


class Progress(loop.Hook):
  """A `Trainer` hook (and its `out`) that shows progress within an epoch."""

  def __init__(self, stream, plain_every_steps=100, is_terminal=None):
    """Args:
      stream: where to write (sys.stdout).
      plain_every_steps: off a terminal, a line every this many steps (0: none).
      is_terminal: None asks `stream.isatty()`; tests force it.
    """
    self.stream = stream
    self.plain_every_steps = plain_every_steps
    self.is_terminal = stream.isatty() if is_terminal is None else is_terminal
    self._bar_shown = False
    self._last_draw = 0.0
    self._epoch_start = (0, 0.0)  # (first step of the epoch here, its time)

  def print_line(self, line):
    """The trainer's `out`: a normal line, after wiping the bar if shown."""
    if self._bar_shown:
      self.stream.write(_CLEAR_LINE)
      self._bar_shown = False
    self.stream.write(f"{line}\n")
    self.stream.flush()

  def begin(self, trainer, step):
    self._epoch_start = (step, time.monotonic())

  def after_step(self, trainer, step):
    steps_per_epoch = trainer.steps_per_epoch
    epoch, done = divmod(step - 1, steps_per_epoch)
    done += 1  # Steps finished in this epoch, 1..steps_per_epoch.
    now = time.monotonic()
    if self.is_terminal:
      if now - self._last_draw < _REDRAW_SECONDS and done != steps_per_epoch:
        return
      self._last_draw = now
      filled = _BAR_WIDTH * done // steps_per_epoch
      bar = "#" * filled + "." * (_BAR_WIDTH - filled)
      self.stream.write(
          f"{_CLEAR_LINE}epoch {epoch + 1}/{trainer.config.epochs} [{bar}] "
          f"{done:>{len(str(steps_per_epoch))}}/{steps_per_epoch}  "
          f"{self._images_per_sec(trainer, step, now):,.0f} images/sec")
      self.stream.flush()
      self._bar_shown = True
    elif self.plain_every_steps and step % self.plain_every_steps == 0:
      self.print_line(
          f"  step {done}/{steps_per_epoch} of epoch {epoch + 1}  "
          f"{self._images_per_sec(trainer, step, now):,.0f} images/sec")

  def after_epoch(self, trainer, epoch, step):
    self._epoch_start = (step, time.monotonic())

  def after_evaluate(self, trainer, epoch, step, record):
    self._epoch_start = (step, time.monotonic())  # Not count eval as training.

  def _images_per_sec(self, trainer, step, now):
    first_step, start_time = self._epoch_start
    return ((step - first_step) * trainer.config.batch_size
            / max(now - start_time, 1e-9))
