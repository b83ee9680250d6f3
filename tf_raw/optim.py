"""RMSProp with the exact semantics of TF1's `tf.train.RMSPropOptimizer`.

TF1's update for each variable `w` with gradient `g` (defaults in brackets):

    ms  <- decay * ms + (1 - decay) * g**2          ms starts at ONES
    mom <- momentum * mom + lr * g / sqrt(ms + eps) mom starts at zeros
    w   <- w - mom

with lr = 0.001, decay = 0.9, momentum = 0, eps = 1e-10 (inside the sqrt).

Keras's `keras.optimizers.RMSprop` is a different optimizer with the same
name: its mean square starts at ZEROS and its default epsilon is 1e-7, added
inside the square root in Keras 3 and tf.keras 2.11+ (outside in standalone
Keras <= 2.3, and in tf.keras 2.0-2.10 with momentum 0). Its first step is
lr * g / sqrt(0.1 g**2 + 1e-7). At this network's initialisation the median
|g| per weight is 3e-9 to 9e-6, so 0.1 g**2 is far below 1e-7 and Keras's
epsilon sets the step: lr * g / sqrt(1e-7), 3,000 times TF1's
lr * g / sqrt(0.9) (measured with the real Keras optimizer:
`tf_raw.tf1.parity.keras_rmsprop_first_step`, tests/test_optim.py). TF1's
ones keep the first steps tiny (about lr * g) until the mean square has
decayed towards g**2, which is why this recipe learns slowly for its first
couple of hundred steps.

The update itself is `tf.raw_ops.ResourceApplyRMSProp`, the very kernel TF1's
optimizer runs, so results match TF1 bit for bit.
"""

import math

import tensorflow as tf


class RMSProp(tf.Module):
  """TF1 RMSProp: one `ms` (mean square) and one `mom` slot per variable.

  The slots are variables created here, before any `tf.function` traces, and
  are tracked by `tf.Module` so a `tf.train.Checkpoint` saves them.
  """

  def __init__(self, variables, learning_rate=0.001, decay=0.9, momentum=0.0,
               epsilon=1e-10, name="rmsprop"):
    """Creates the slots.

    Args:
      variables: list of `tf.Variable` to optimise (order matters: `apply`
        takes gradients in the same order).
      learning_rate, decay, momentum, epsilon: as in TF1's RMSPropOptimizer.
      name: the module's name.
    """
    super().__init__(name=name)
    self.learning_rate = learning_rate
    self.decay = decay
    self.momentum = momentum
    self.epsilon = epsilon
    with self.name_scope:
      self.mean_squares = [
          tf.Variable(tf.ones_like(v), trainable=False,
                      name=v.name.split(":")[0].split("/")[-1] + "_ms")
          for v in variables]
      self.moments = [
          tf.Variable(tf.zeros_like(v), trainable=False,
                      name=v.name.split(":")[0].split("/")[-1] + "_mom")
          for v in variables]
    self._variables = list(variables)

  def apply(self, gradients, learning_rate=None):
    """Updates every variable in place with its gradient.

    Args:
      gradients: list of float32 tensors, one per variable, same order.
      learning_rate: None for the constant `self.learning_rate` (TF1's), or
        a float32 scalar tensor, this step's rate (e.g. `cosine_rate`).
    """
    for var, ms, mom, grad in zip(self._variables, self.mean_squares,
                                  self.moments, gradients):
      if learning_rate is None:
        learning_rate_tensor = tf.constant(self.learning_rate, var.dtype)
      else:
        learning_rate_tensor = tf.cast(learning_rate, var.dtype)
      # One fused kernel per variable, shared with TF1; see the module doc.
      tf.raw_ops.ResourceApplyRMSProp(
          var=var.handle, ms=ms.handle, mom=mom.handle,
          lr=learning_rate_tensor,
          rho=tf.constant(self.decay, var.dtype),
          momentum=tf.constant(self.momentum, var.dtype),
          epsilon=tf.constant(self.epsilon, var.dtype),
          grad=grad)


def cosine_rate(base_rate, step, total_steps):
  """The learning rate of `step` on a cosine from base_rate down to 0.

      rate = base_rate * (1 + cos(pi * step / total_steps)) / 2

  base_rate at step 0, half of it halfway, 0 after the last step. Large
  steps early explore; small steps at the end settle the weights in a
  minimum instead of jumping around it (what a constant rate leaves).

  Args:
    base_rate: float, the rate at step 0 (`--learning_rate`).
    step: int scalar tensor, the global step (0 for the first step).
    total_steps: int, the run's steps (epochs * steps per epoch); past it
      the rate stays 0.

  Returns:
    float32 scalar tensor.
  """
  progress = tf.minimum(tf.cast(step, tf.float32) / float(total_steps), 1.0)
  return base_rate * 0.5 * (1.0 + tf.cos(math.pi * progress))


def update_moving_average(averages, variables, decay, step):
  """Moves each average towards its variable: avg -= (1 - d) * (avg - var).

  This is TF1's `tf.train.ExponentialMovingAverage(decay, num_updates=step)`,
  written out: the effective decay d = min(decay, (1 + step) / (10 + step))
  averages quickly at the start, then over about 1 / (1 - decay) steps.
  Evaluating with averaged weights smooths out the step-to-step noise that a
  constant learning rate leaves in the last epochs (the TF1 CIFAR-10 tutorial
  did the same).

  Args:
    averages: list of `tf.Variable`, the running averages (updated in place).
    variables: list of `tf.Variable` or tensors, same shapes and order.
    decay: float in [0, 1), e.g. 0.999.
    step: scalar tensor, the number of updates so far.
  """
  step = tf.cast(step, tf.float32)
  effective_decay = tf.minimum(decay, (1.0 + step) / (10.0 + step))
  for average, variable in zip(averages, variables):
    # avg -= (1 - d) * (avg - var) as gradient descent on avg with
    # "gradient" avg - var: one fused pass instead of a multiply and an
    # assign_sub (the same float operations, in the same order).
    tf.raw_ops.ResourceApplyGradientDescent(
        var=average.handle, alpha=1.0 - effective_decay,
        delta=average - variable)
