"""ResNet v1 trunks: shapes, endpoint names, parameter counts, collections."""

import zlib

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from resnet import network
from tests import replica_harness

BLOCKS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3],
          101: [3, 4, 23, 3], 152: [3, 8, 36, 3], 200: [3, 24, 36, 3]}


def _build(depth, images, is_training=True, scope='base_model', **kwargs):
  with tf.variable_scope(scope):
    return network.resnet_v1(depth, **kwargs)(images, is_training)


def _num_params(variables):
  return sum(v.shape.num_elements() for v in variables)


def hand_param_count(depth, width=1, cifar_stem=False):
  """Trunk trainable parameters: conv kernels (no biases) + BN gamma/beta."""

  def conv_bn(k, c_in, c_out):
    return k * k * c_in * c_out + 2 * c_out

  stem_width = 64 * width
  total = conv_bn(3 if cifar_stem else 7, 3, stem_width)
  c_in = stem_width
  for group, num_blocks in enumerate(BLOCKS[depth]):
    f = 64 * width * 2**group
    for block in range(num_blocks):
      if depth < 50:  # Basic block: 3x3 f -> 3x3 f.
        c_out = f
        total += conv_bn(3, c_in, f) + conv_bn(3, f, f)
      else:  # Bottleneck: 1x1 f -> 3x3 f -> 1x1 4f.
        c_out = 4 * f
        total += conv_bn(1, c_in, f) + conv_bn(3, f, f) + conv_bn(1, f, c_out)
      if block == 0:  # Projection shortcut in the first block of every group.
        total += conv_bn(1, c_in, c_out)
      c_in = c_out
  return total


@pytest.mark.parametrize('depth', sorted(BLOCKS))
def test_cifar_stem_shapes_and_names(depth):
  graph = tf.Graph()
  with graph.as_default():
    images = tf.zeros([2, 32, 32, 3])
    pooled, endpoints = _build(depth, images, cifar_stem=True)
    expansion = 1 if depth < 50 else 4
    expected = {
        'initial_conv': [2, 32, 32, 64],
        'initial_max_pool': [2, 32, 32, 64],
        'block_group1': [2, 32, 32, 64 * expansion],
        'block_group2': [2, 16, 16, 128 * expansion],
        'block_group3': [2, 8, 8, 256 * expansion],
        'block_group4': [2, 4, 4, 512 * expansion],
        'final_avg_pool': [2, 512 * expansion],
    }
    assert set(endpoints) == set(network.ENDPOINT_NAMES) == set(expected)
    for name, shape in expected.items():
      assert endpoints[name].shape.as_list() == shape, name
      assert graph.get_tensor_by_name('base_model/%s:0' % name) is (
          endpoints[name])
    assert pooled is endpoints['final_avg_pool']
    assert network.feature_dim(depth) == 512 * expansion
    assert _num_params(tf.trainable_variables()) == hand_param_count(
        depth, cifar_stem=True)


@pytest.mark.parametrize('depth,width', [(18, 1), (50, 1), (18, 2)])
def test_imagenet_stem_runs(depth, width):
  expansion = 1 if depth < 50 else 4
  with tf.Graph().as_default():
    images = tf.random.uniform([2, 64, 64, 3], seed=1)
    pooled, endpoints = _build(depth, images, width_multiplier=width)
    c = 64 * width
    assert endpoints['initial_conv'].shape.as_list() == [2, 32, 32, c]
    assert endpoints['initial_max_pool'].shape.as_list() == [2, 16, 16, c]
    assert endpoints['block_group1'].shape.as_list() == [
        2, 16, 16, c * expansion]
    assert endpoints['block_group4'].shape.as_list() == [
        2, 2, 2, 8 * c * expansion]
    assert network.feature_dim(depth, width) == 8 * c * expansion
    assert _num_params(tf.trainable_variables()) == hand_param_count(
        depth, width)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      out = sess.run(pooled)
  assert out.shape == (2, 8 * c * expansion)
  assert np.all(np.isfinite(out))


def test_resnet50_matches_torchvision_count():
  # torchvision resnet50: 25,557,032 parameters, of which fc has 2048*1000+1000.
  assert hand_param_count(50) == 25557032 - 2049000 == 23508032
  with tf.Graph().as_default():
    _build(50, tf.zeros([1, 64, 64, 3]))
    assert _num_params(tf.trainable_variables()) == 23508032


def test_resnet18_count_includes_group1_projection():
  # torchvision resnet18 without fc: 11,689,512 - (512*1000+1000) = 11,176,512;
  # group 1 here also has a 1x1 64->64 projection + BN: 4096 + 128 more.
  assert hand_param_count(18) == 11176512 + 64 * 64 + 2 * 64
  with tf.Graph().as_default():
    _build(18, tf.zeros([1, 64, 64, 3]))
    assert _num_params(tf.trainable_variables()) == 11176512 + 4224


def test_variable_names_follow_tf_layers_order():
  with tf.Graph().as_default():
    _build(18, tf.zeros([1, 32, 32, 3]), cifar_stem=True)
    names = [v.op.name for v in tf.global_variables()]
  # Stem, then group 1 block 1: projection conv/BN first, then the two convs.
  assert names[:5] == ['base_model/conv2d/kernel',
                       'base_model/batch_normalization/gamma',
                       'base_model/batch_normalization/beta',
                       'base_model/batch_normalization/moving_mean',
                       'base_model/batch_normalization/moving_variance']
  convs = [n for n in names if n.endswith('/kernel')]
  # 1 stem + 4 groups * (2 blocks * 2 convs + 1 projection).
  assert len(convs) == 21
  assert convs[-1] == 'base_model/conv2d_20/kernel'
  assert 'base_model/batch_normalization_20/moving_variance' in names


@pytest.mark.parametrize('depth', [18, 50])
def test_last_bn_gamma_is_zero_initialised(depth):
  with tf.Graph().as_default(), tf.Session() as sess:
    _build(depth, tf.zeros([1, 32, 32, 3]), cifar_stem=True)
    gamma_vars = {v.op.name: v for v in tf.trainable_variables()
                  if v.op.name.endswith('/gamma')}
    sess.run(tf.variables_initializer(list(gamma_vars.values())))
    gammas = sess.run(gamma_vars)
  zero = sorted(n for n, g in gammas.items() if not np.any(g))
  one = [n for n, g in gammas.items() if np.all(g == 1.0)]
  assert len(zero) == sum(BLOCKS[depth])  # One per block.
  assert len(zero) + len(one) == len(gammas)
  # The zero one closes each block: in ResNet-18 the first block's BNs are
  # the stem's (0), the projection's (1) and the two convs' (2, 3).
  if depth == 18:
    assert 'base_model/batch_normalization_3/gamma' in zero


@pytest.mark.parametrize('kind', ['basic', 'bottleneck'])
def test_block_is_identity_at_init(kind):
  # With the last BN gamma at 0 (and beta 0) the residual branch vanishes, so
  # a block without projection outputs relu(shortcut).
  rng = np.random.RandomState(0)
  channels = 8 if kind == 'basic' else 16
  x = rng.randn(2, 5, 5, channels).astype(np.float32)
  with tf.Graph().as_default(), tf.Session() as sess:
    # pylint: disable=protected-access
    builder = network._Builder(True, None, 0.9)
    # pylint: enable=protected-access
    block = (builder.basic_block if kind == 'basic'
             else builder.bottleneck_block)
    y = block(tf.constant(x), channels if kind == 'basic' else channels // 4,
              1, use_projection=False)
    sess.run(tf.global_variables_initializer())
    np.testing.assert_array_equal(sess.run(y), np.maximum(x, 0.0))


def test_block_collections_partition_trainables():
  with tf.Graph().as_default():
    _build(18, tf.zeros([1, 32, 32, 3]), cifar_stem=True)
    trainables = tf.trainable_variables()
    blocks = [tf.get_collection(network.block_collection(k)) for k in range(5)]
    assert network.block_collection(3) == 'trainable_variables_inblock_3'
    assert all(blocks)
    assert [v.op.name for v in blocks[0]] == [
        'base_model/conv2d/kernel', 'base_model/batch_normalization/gamma',
        'base_model/batch_normalization/beta']
    flat = [v for b in blocks for v in b]
    assert len(flat) == len(set(flat)) == len(trainables)
    assert set(flat) == set(trainables)
    # 4 groups * (2 blocks * 2 conv+BN + 1 projection conv+BN) * 3 variables.
    assert [len(b) for b in blocks] == [3, 15, 15, 15, 15]

    # A reusing second build (e.g. eval) adds neither variables nor members.
    with tf.variable_scope('base_model', reuse=True):
      _, endpoints = network.resnet_v1(18, cifar_stem=True)(
          tf.zeros([1, 32, 32, 3]), False)
    assert len(tf.trainable_variables()) == len(trainables)
    assert [len(tf.get_collection(network.block_collection(k)))
            for k in range(5)] == [3, 15, 15, 15, 15]
    assert endpoints['block_group1'].name == 'base_model_1/block_group1:0'


@pytest.mark.parametrize('after_block', [-1, 0, 2, 4])
def test_fine_tune_after_block_stops_gradients(after_block):
  with tf.Graph().as_default():
    pooled, _ = _build(18, tf.zeros([1, 32, 32, 3]), cifar_stem=True,
                       fine_tune_after_block=after_block)
    for k in range(5):
      variables = tf.get_collection(network.block_collection(k))
      grads = tf.gradients(tf.reduce_sum(pooled), variables)
      if k <= after_block:
        assert all(g is None for g in grads), k
      else:
        assert all(g is not None for g in grads), k


def test_argument_validation():
  with pytest.raises(ValueError, match=r'resnet_depth.*18, 34, 50'):
    network.resnet_v1(42)
  with pytest.raises(ValueError, match='resnet_depth'):
    network.feature_dim(19)
  for width in (0, 1.5, True):
    with pytest.raises(ValueError, match='width_multiplier'):
      network.resnet_v1(50, width_multiplier=width)
  with pytest.raises(ValueError, match='fine_tune_after_block'):
    network.resnet_v1(50, fine_tune_after_block=5)


def test_bfloat16_forward():
  rng = np.random.RandomState(0)
  x = rng.rand(2, 16, 16, 3).astype(np.float32)
  with tf.Graph().as_default(), tf.Session() as sess:
    pooled32, _ = _build(18, tf.constant(x), cifar_stem=True)
    with tf.variable_scope('base_model', reuse=True):
      pooled16, endpoints = network.resnet_v1(18, cifar_stem=True)(
          tf.cast(tf.constant(x), tf.bfloat16), True)
    assert endpoints['block_group4'].dtype == tf.bfloat16
    assert pooled16.dtype == tf.float32
    assert all(v.dtype.base_dtype == tf.float32
               for v in tf.global_variables())
    sess.run(tf.global_variables_initializer())
    out32, out16 = sess.run([pooled32, pooled16])
  assert np.all(np.isfinite(out16))
  # Same weights: bfloat16 (8-bit mantissa) tracks float32 loosely.
  assert np.abs(out16 - out32).mean() < 0.05 * np.abs(out32).mean()


def _same_kernels_getter(getter, name, *args, **kwargs):
  """Seeds each kernel by its scope-relative name: equal in every copy."""
  if name.endswith('/kernel'):
    # An op-level seed makes the (stateless-per-op) draw equal across copies.
    seed = zlib.crc32(name.split('/', 1)[1].encode('utf-8')) % (2**31)
    kwargs['initializer'] = tf.variance_scaling_initializer(
        scale=2.0, distribution='truncated_normal', seed=seed)
  return getter(name, *args, **kwargs)


def test_global_bn_trunk_equals_full_batch():
  # Through a whole trunk, replicas with global BN act as one big batch
  # (4 replicas are covered per layer in test_batch_norm.py).
  num_replicas = 2
  rng = np.random.RandomState(3)
  x = rng.rand(8, 16, 16, 3).astype(np.float32)
  local = x.shape[0] // num_replicas

  def build(images, ctx, scope):
    with tf.variable_scope(scope, custom_getter=_same_kernels_getter):
      pooled, endpoints = network.resnet_v1(18, cifar_stem=True, ctx=ctx)(
          images, True)
    return {'pooled': pooled, 'group2': endpoints['block_group2']}

  with tf.Graph().as_default(), tf.Session() as sess:
    full_t = build(tf.constant(x), None, 'base_model')
    sess.run(tf.global_variables_initializer())
    full = sess.run(full_t)

  shards = replica_harness.run_replicated(
      lambda ctx, i: build(tf.constant(x[i * local:(i + 1) * local]), ctx,
                           'replica%d' % i), num_replicas)
  for name in ('pooled', 'group2'):
    sharded = np.concatenate([s[name] for s in shards])
    err = np.abs(sharded - full[name]).max() / np.abs(full[name]).max()
    assert err < 1e-4, (name, err)
  # Sanity: local BN on a shard would give a visibly different answer.
  with tf.Graph().as_default(), tf.Session() as sess:
    alone_t = build(tf.constant(x[:local]), None, 'base_model')
    sess.run(tf.global_variables_initializer())
    alone = sess.run(alone_t)['pooled']
  assert np.abs(alone - full['pooled'][:local]).max() > 1e-2
