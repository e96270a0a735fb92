"""Step arithmetic of a run: training steps, steps per epoch, checkpoint cadence, eval steps."""

import math


def train_steps(hp, num_train_examples):
  """Total training steps: --train_steps, or epochs over the training set."""
  if hp.train_steps > 0:
    return hp.train_steps
  return num_train_examples * hp.train_epochs // hp.train_batch_size + 1


def steps_per_epoch(hp, num_train_examples):
  """Training steps per epoch (at least 1)."""
  return max(1, int(round(num_train_examples / hp.train_batch_size)))


def checkpoint_steps(hp, num_train_examples):
  """Steps between two checkpoints."""
  if hp.checkpoint_steps > 0:
    return hp.checkpoint_steps
  return max(1, hp.checkpoint_epochs * steps_per_epoch(hp, num_train_examples))


def eval_steps(hp, num_eval_examples):
  """Eval steps: --eval_steps, or enough batches to cover the whole split."""
  if hp.eval_steps > 0:
    return hp.eval_steps
  return int(math.ceil(num_eval_examples / hp.eval_batch_size))
