"""What a `Trainer` tells its hooks, and when: the extension points of the loop.

A hook is any object with these methods (subclass `Hook` and override the ones
you need). `Trainer.run()` calls them with itself as the first argument:

    begin(trainer, step)             before the first step of this run
                                     (step: where it starts, > 0 on resume)
    after_step(trainer, step)        after each call that trains (up to
                                     training.STEPS_PER_CALL steps; calls end
                                     on multiples of log_every_steps). step:
                                     the global step reached, a Python int
    after_epoch(trainer, epoch, step)   after the epoch's checkpoint and its
                                     progress line (epoch: 0-based)
    after_evaluate(trainer, epoch, step, accuracy)   after a test evaluation
    end(trainer, step)               when run() stops: after the last
                                     epoch, or on a signal or an error (step:
                                     the last step that ran)

`after_step` runs every few steps, so it must stay cheap: a hook that reads a
tensor there (`.numpy()`) makes Python wait for the step to finish, which is
fine every hundred steps and wasteful on every one.

The hooks of this package: `summaries.TensorBoard` (event files for
TensorBoard) and `progress.Progress` (a progress bar on a terminal).
"""


class Hook:
  """Does nothing at each point of the loop; override what you need."""

  def begin(self, trainer, step):
    pass

  def after_step(self, trainer, step):
    pass

  def after_epoch(self, trainer, epoch, step):
    pass

  def after_evaluate(self, trainer, epoch, step, accuracy):
    pass

  def end(self, trainer, step):
    pass
