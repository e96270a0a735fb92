"""Training precision: the ResNet trunk's compute dtype and its XLA scope."""

import contextlib

import tensorflow.compat.v1 as tf


def compute_dtype(hp):
  """The trunk's activation dtype: bfloat16, float16 or float32 (variables stay float32)."""
  if hp.use_bfloat16 or hp.precision == 'mixed_bfloat16':
    return tf.bfloat16
  if hp.precision == 'mixed_float16':
    return tf.float16
  return tf.float32


def uses_loss_scale(hp):
  """Whether gradients go through the dynamic loss scale (float16 only)."""
  return compute_dtype(hp) == tf.float16


def trunk_jit_scope(hp):
  """XLA JIT scope for the trunk with --use_xla off TPU (its gradients compile too)."""
  if not hp.use_xla or hp.use_tpu:  # TPU compiles the whole step anyway
    return contextlib.nullcontext()
  # One cluster for forward and backward: fewer host/XLA boundaries.
  return tf.xla.experimental.jit_scope(compile_ops=True,
                                       separate_compiled_gradients=False)
