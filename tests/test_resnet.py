"""ResNet v1 trunks: shapes, endpoint names, parameter counts derived by hand, freezing."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import resnet

BLOCKS = {18: ('basic', [2, 2, 2, 2]), 34: ('basic', [3, 4, 6, 3]),
          50: ('bottleneck', [3, 4, 6, 3]), 101: ('bottleneck', [3, 4, 23, 3]),
          152: ('bottleneck', [3, 8, 36, 3]), 200: ('bottleneck', [3, 24, 36, 3])}


def hand_count(depth, width=1, cifar_stem=False):
  """Trainable parameters: conv kernels (no biases) + BN gamma/beta (2 per channel)."""
  kind, layers = BLOCKS[depth]
  stem_kernel = 3 if cifar_stem else 7
  total = stem_kernel * stem_kernel * 3 * 64 * width + 2 * 64 * width
  cin = 64 * width
  for group, num_blocks in enumerate(layers):
    c = 64 * width * 2 ** group
    out = c if kind == 'basic' else 4 * c
    for block in range(num_blocks):
      if kind == 'basic':
        total += 9 * cin * c + 2 * c + 9 * c * c + 2 * c
      else:  # 1x1 reduce, 3x3, 1x1 expand
        total += cin * c + 2 * c + 9 * c * c + 2 * c + c * out + 2 * out
      if block == 0:  # projection shortcut in the first block of every group
        total += cin * out + 2 * out
      cin = out
  return total


def build(depth, size=32, cifar_stem=True, width=1, batch=2, **kw):
  images = tf.random.uniform([batch, size, size, 3])
  with tf.variable_scope('base_model'):
    return resnet.resnet_v1(depth, width, cifar_stem=cifar_stem, **kw)(
        images, True)


@pytest.mark.parametrize('depth', sorted(BLOCKS))
def test_parameter_count_matches_the_hand_derivation(depth):
  with tf.Graph().as_default():
    build(depth, cifar_stem=False)
    count = sum(np.prod(v.shape.as_list()) for v in tf.trainable_variables())
  assert count == hand_count(depth)


def test_resnet50_is_the_standard_trunk():
  # torchvision resnet50: 25,557,032 parameters, minus its 2048x1000 fc + bias.
  assert hand_count(50) == 25557032 - 2049000 == 23508032


def test_resnet18_has_the_simclr_group1_projection():
  # Standard ResNet-18 trunk (11,176,512) plus a 1x1 64->64 projection + BN.
  assert hand_count(18) == 11176512 + 64 * 64 + 2 * 64


def test_width_multiplier_and_cifar_stem_counts():
  with tf.Graph().as_default():
    build(18, width=2)
    count = sum(np.prod(v.shape.as_list()) for v in tf.trainable_variables())
  assert count == hand_count(18, width=2, cifar_stem=True)


@pytest.mark.parametrize('depth', sorted(BLOCKS))
def test_endpoint_shapes_with_cifar_stem(depth):
  expand = 1 if depth < 50 else 4
  with tf.Graph().as_default() as graph:
    pooled, endpoints = build(depth)
    shapes = {k: v.shape.as_list() for k, v in endpoints.items()}
    assert graph.get_tensor_by_name('base_model/block_group1:0') is not None
    assert graph.get_tensor_by_name('base_model/final_avg_pool:0') is not None
  assert shapes['initial_conv'] == [2, 32, 32, 64]
  assert shapes['initial_max_pool'] == [2, 32, 32, 64]
  for g, size in zip(range(1, 5), (32, 16, 8, 4)):
    assert shapes['block_group%d' % g] == [2, size, size, 64 * 2**(g - 1) * expand]
  assert pooled.shape.as_list() == [2, resnet.feature_dim(depth)]


@pytest.mark.parametrize('depth', [18, 50])
def test_imagenet_stem_runs_and_downsamples(depth):
  with tf.Graph().as_default(), tf.Session() as sess:
    pooled, endpoints = build(depth, size=64, cifar_stem=False)
    sess.run(tf.global_variables_initializer())
    out, pool, g4 = sess.run([pooled, endpoints['initial_max_pool'],
                              endpoints['block_group4']])
  assert pool.shape == (2, 16, 16, 64) and g4.shape[1:3] == (2, 2)
  assert out.shape == (2, resnet.feature_dim(depth)) and np.all(np.isfinite(out))


def test_last_bn_gamma_of_each_block_starts_at_zero():
  with tf.Graph().as_default():
    build(18)
    gammas = [v for v in tf.global_variables() if v.op.name.endswith('gamma')]
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      zero = [v.op.name for v, g in zip(gammas, sess.run(gammas))
              if np.all(g == 0)]
  assert len(zero) == 8  # one per basic block of ResNet-18


def test_block_collections_partition_the_variables_and_freezing_works():
  with tf.Graph().as_default():
    pooled, _ = build(18, fine_tune_after_block=4)
    variables = tf.trainable_variables()
    groups = [tf.get_collection('trainable_variables_inblock_%d' % k)
              for k in range(5)]
    assert sorted(v.op.name for g in groups for v in g) == sorted(
        v.op.name for v in variables)
    assert all(g is None for g in tf.gradients(tf.reduce_sum(pooled), variables))


def test_invalid_depth_names_the_flag():
  with pytest.raises(ValueError, match='resnet_depth'):
    resnet.resnet_v1(20)
