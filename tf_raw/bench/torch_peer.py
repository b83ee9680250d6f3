"""The benchmark's PyTorch peer: the notebook's network in `torch.nn`.

Optional: `worker.py` imports this module only when torch is
importable, so tf_raw never requires torch. The network and recipe are the
notebook's (no biases, dropout keep 0.8 / 0.5, RMSprop(0.001, alpha=0.9),
batch 128); PyTorch's RMSprop starts its mean square at zeros and adds eps
outside the square root, which changes the numbers, not the cost per step.
With precision="mixed_bfloat16" the forward pass and the loss run under
`torch.autocast("cpu", dtype=torch.bfloat16)` (float32 parameters and
optimizer; convolutions and matmuls in bfloat16), PyTorch's own mixed
precision.
"""

import numpy as np
import torch
from torch import nn


IMAGE_SHAPE = (32, 32, 3)  # As tf_raw.model.IMAGE_SHAPE (NHWC).
NUM_CLASSES = 10
HIDDEN_UNITS = 625
INIT_STDDEV = 0.01


def torch_model():
  """The notebook's network as an `nn.Sequential` over NCHW images."""
  def conv_block(in_channels, out_channels):
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(1 - 0.8)]

  model = nn.Sequential(
      *conv_block(3, 32), *conv_block(32, 64), *conv_block(64, 128),
      nn.Flatten(), nn.Dropout(1 - 0.8),
      nn.Linear(4 * 4 * 128, HIDDEN_UNITS, bias=False), nn.ReLU(),
      nn.Dropout(1 - 0.5),
      nn.Linear(HIDDEN_UNITS, NUM_CLASSES, bias=False))
  with torch.no_grad():
    for parameter in model.parameters():
      parameter.normal_(0.0, INIT_STDDEV)
  return model


def pytorch_rates(turns, warmup_steps, channels_last, threads,
                  precision="float32", pool_batches=20):
  """A plain PyTorch training loop, one timed repeat per turn.

  Args:
    turns: a `timing.Turns`.
    warmup_steps: steps before the first turn.
    channels_last: store activations NHWC (usually faster on CPU).
    threads: torch.set_num_threads (the machine's cores).
    precision: "float32", or "mixed_bfloat16" for autocast to bfloat16.
    pool_batches: distinct batches cycled through.
  """
  batch_size = turns.batch_size
  autocast = precision == "mixed_bfloat16"
  torch.manual_seed(0)
  torch.set_num_threads(threads)
  memory_format = (torch.channels_last if channels_last
                   else torch.contiguous_format)
  model = torch_model().to(memory_format=memory_format)
  model.train()
  optimizer = torch.optim.RMSprop(model.parameters(), lr=0.001, alpha=0.9,
                                  eps=1e-10)
  loss_fn = nn.CrossEntropyLoss()
  rng = np.random.default_rng(0)
  images = torch.from_numpy(rng.integers(
      0, 256, (pool_batches * batch_size, *IMAGE_SHAPE), dtype=np.uint8))
  # NHWC uint8 -> NCHW float in [0, 1], prepared up front like the notebook.
  images = (images.permute(0, 3, 1, 2).float() / 255.0).contiguous(
      memory_format=memory_format)
  labels = torch.from_numpy(rng.integers(
      0, NUM_CLASSES, pool_batches * batch_size)).long()
  batch = [0]

  def run_steps(num_steps):
    for _ in range(num_steps):
      start = batch[0] % pool_batches * batch_size
      optimizer.zero_grad(set_to_none=True)
      with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = loss_fn(model(images[start:start + batch_size]),
                       labels[start:start + batch_size])
      loss.backward()
      optimizer.step()
      batch[0] += 1

  turns.serve(run_steps, warmup_steps)
  return {"mkldnn": torch.backends.mkldnn.is_available()}
