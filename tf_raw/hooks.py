"""What a `Trainer` tells its hooks, and when: the extension points of the loop.

A hook is any object with these methods (subclass `Hook` and override the ones
you need). `Trainer.run()` calls them with itself as the first argument:

    begin(trainer, step)             before the first step of this run
                                     (step: where it starts, > 0 on resume)
    after_step(trainer, step)        after every train step (step: 1-based
                                     global step, a Python int)
    after_epoch(trainer, epoch, step)   after the epoch's checkpoint and its
                                     progress line (epoch: 0-based)
    after_evaluate(trainer, epoch, step, accuracy)   after a test evaluation
    end(trainer, step)               after the last epoch

`after_step` runs on every step, so it must stay cheap: a hook that reads a
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
