"""ResNet v1 trunks: shapes, endpoint names, parameter counts, collections."""

import zlib

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import names
from resnet import network
from tests import replica_harness

BLOCKS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3],
          101: [3, 4, 23, 3], 152: [3, 8, 36, 3], 200: [3, 24, 36, 3]}


def _build(depth, images, is_training=True, scope='base_model', **kwargs):
  with tf.variable_scope(scope):
    return network.resnet_v1(depth, **kwargs)(images, is_training)


def _num_params(variables):
  return sum(v.shape.num_elements() for v in variables)


def hand_param_count(depth, width=1, cifar_stem=False, sk_ratio=0.0,
                     se_ratio=0.0):
  """Trunk trainable parameters: conv kernels (no biases) + BN gamma/beta.

  SK (bottleneck 3x3 only): a 3x3 conv f -> 2f + BN, a 1x1 conv f -> m + BN
  with m = max(int(f * sk_ratio), 32), a 1x1 conv m -> 2f (no BN, no bias).
  SE: 1x1 conv c -> r and r -> c, both with bias, r = max(1, int(f * se_ratio))
  with f the block's base width and c its output width.  ResNet-D shortcuts
  (avg-pool + 1x1 conv) have the same parameters as the plain 1x1 ones; the
  ResNet-D stem is 3x3 convs 3 -> s/2 -> s/2 -> s, each with BN.
  """

  def conv_bn(k, c_in, c_out):
    return k * k * c_in * c_out + 2 * c_out

  def sk(f):
    m = max(int(f * sk_ratio), 32)
    return conv_bn(3, f, 2 * f) + conv_bn(1, f, m) + m * 2 * f

  def se(f, c):
    if se_ratio == 0:
      return 0
    r = max(1, int(f * se_ratio))
    return (c * r + r) + (r * c + c)

  s = int(64 * width)
  if cifar_stem:
    total = conv_bn(3, 3, s)
  elif sk_ratio > 0:
    total = conv_bn(3, 3, s // 2) + conv_bn(3, s // 2, s // 2) + conv_bn(
        3, s // 2, s)
  else:
    total = conv_bn(7, 3, s)
  c_in = s
  for group, num_blocks in enumerate(BLOCKS[depth]):
    f = int(64 * width * 2**group)
    for block in range(num_blocks):
      if depth < 50:  # Basic block: 3x3 f -> 3x3 f (SK leaves it as is).
        c_out = f
        total += conv_bn(3, c_in, f) + conv_bn(3, f, f)
      else:  # Bottleneck: 1x1 f -> 3x3 (or SK) f -> 1x1 4f.
        c_out = 4 * f
        total += (conv_bn(1, c_in, f) +
                  (sk(f) if sk_ratio > 0 else conv_bn(3, f, f)) +
                  conv_bn(1, f, c_out))
      total += se(f, c_out)
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
    blocks = [tf.get_collection(names.block_collection(k)) for k in range(5)]
    assert names.block_collection(3) == 'trainable_variables_inblock_3'
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
    assert [len(tf.get_collection(names.block_collection(k)))
            for k in range(5)] == [3, 15, 15, 15, 15]
    assert endpoints['block_group1'].name == 'base_model_1/block_group1:0'


@pytest.mark.parametrize('after_block', [-1, 0, 2, 4])
def test_fine_tune_after_block_stops_gradients(after_block):
  with tf.Graph().as_default():
    pooled, _ = _build(18, tf.zeros([1, 32, 32, 3]), cifar_stem=True,
                       fine_tune_after_block=after_block)
    for k in range(5):
      variables = tf.get_collection(names.block_collection(k))
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
  for width in (0, -1, 1 / 64, True, '2'):
    with pytest.raises(ValueError, match='width_multiplier'):
      network.resnet_v1(50, width_multiplier=width)
  for name in ('sk_ratio', 'se_ratio'):
    for value in (-0.1, 1.0, True):
      with pytest.raises(ValueError, match=name):
        network.resnet_v1(50, **{name: value})
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


SK, SE = 0.0625, 0.25  # SimCLR v2's sk_ratio; se_ratio of SE-ResNet (r=16).


@pytest.mark.parametrize('depth', sorted(BLOCKS))
def test_sk_se_shapes_counts_and_collections_every_depth(depth):
  expansion = 1 if depth < 50 else 4
  with tf.Graph().as_default():
    pooled, endpoints = _build(depth, tf.zeros([2, 64, 64, 3]), sk_ratio=SK,
                               se_ratio=SE)
    expected = {
        'initial_conv': [2, 32, 32, 64],
        'initial_max_pool': [2, 16, 16, 64],
        'block_group1': [2, 16, 16, 64 * expansion],
        'block_group2': [2, 8, 8, 128 * expansion],
        'block_group3': [2, 4, 4, 256 * expansion],
        'block_group4': [2, 2, 2, 512 * expansion],
        'final_avg_pool': [2, 512 * expansion],
    }
    for name, shape in expected.items():
      assert endpoints[name].shape.as_list() == shape, name
    assert pooled is endpoints['final_avg_pool']
    trainables = tf.trainable_variables()
    assert _num_params(trainables) == hand_param_count(
        depth, sk_ratio=SK, se_ratio=SE)
    # SK/SE variables belong to their block's collection; nothing is left out.
    blocks = [tf.get_collection(names.block_collection(k)) for k in range(5)]
    flat = [v for b in blocks for v in b]
    assert len(flat) == len(set(flat)) == len(trainables)
    # ResNet-D stem: 3 convs + 3 BNs in block 0.
    assert len(blocks[0]) == 9
    se_biases = [v for v in blocks[4] if v.op.name.endswith('/bias')]
    assert len(se_biases) == 2 * BLOCKS[depth][3]


def test_sk_and_se_counts_match_published_models():
  # SE-ResNet-50 (Hu et al., reduction 16 of the 4f output = se_ratio 0.25 of
  # f): 28,088,024 parameters, of which the fc has 2048*1000+1000.
  assert hand_param_count(50, se_ratio=SE) == 28088024 - 2049000
  # SimCLR v2 (arXiv:2006.10029) Table 1, parameters in millions (rounded).
  published = {(50, 1, False): 24, (50, 1, True): 35, (50, 2, False): 94,
               (50, 2, True): 140, (101, 1, False): 43, (101, 1, True): 65,
               (101, 2, False): 170, (101, 2, True): 257, (152, 1, False): 58,
               (152, 1, True): 89, (152, 2, False): 233, (152, 2, True): 354,
               (152, 3, True): 795}
  for (depth, width, sk), millions in published.items():
    count = hand_param_count(depth, width, sk_ratio=SK if sk else 0.0)
    assert abs(count / 1e6 - millions) < 1.0, (depth, width, sk, count)
  with tf.Graph().as_default():
    _build(50, tf.zeros([1, 64, 64, 3]), sk_ratio=SK)
    assert _num_params(tf.trainable_variables()) == 35215584
  with tf.Graph().as_default():
    _build(50, tf.zeros([1, 64, 64, 3]), se_ratio=SE)
    assert _num_params(tf.trainable_variables()) == 28088024 - 2049000


@pytest.mark.parametrize('depth,width,sk', [(18, 1.5, 0.0), (50, 0.5, SK),
                                            (18, 0.25, SK)])
def test_float_width_multiplier(depth, width, sk):
  expansion = 1 if depth < 50 else 4
  with tf.Graph().as_default():
    images = tf.random.uniform([2, 32, 32, 3], seed=2)
    pooled, endpoints = _build(depth, images, width_multiplier=width,
                               sk_ratio=sk)
    for group in range(1, 5):
      assert endpoints['block_group%d' % group].shape[-1] == (
          int(64 * width * 2**(group - 1)) * expansion)
    assert endpoints['initial_conv'].shape[-1] == int(64 * width)
    assert network.feature_dim(depth, width) == int(512 * width) * expansion
    assert _num_params(tf.trainable_variables()) == hand_param_count(
        depth, width, sk_ratio=sk)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      out = sess.run(pooled)
  assert out.shape == (2, int(512 * width) * expansion)
  assert np.all(np.isfinite(out))


def test_variable_order_of_sk_se_bottleneck():
  # SimCLR v2 creation order: ResNet-D shortcut conv/BN, 1x1 conv/BN, SK
  # (3x3 conv, BN, fc conv, BN, mixing conv), 1x1 conv/BN, SE reduce/expand.
  with tf.Graph().as_default():
    # pylint: disable=protected-access
    builder = network._Builder(True, None, 0.9, sk_ratio=SK, se_ratio=SE)
    # pylint: enable=protected-access
    builder.bottleneck_block(tf.zeros([2, 8, 8, 16]), 64, 2,
                             use_projection=True)
    shapes = [(v.op.name, v.shape.as_list()) for v in tf.trainable_variables()
              if not v.op.name.endswith(('/gamma', '/beta'))]
  assert shapes == [
      ('conv2d/kernel', [1, 1, 16, 256]),
      ('conv2d_1/kernel', [1, 1, 16, 64]),
      ('conv2d_2/kernel', [3, 3, 64, 128]),
      ('conv2d_3/kernel', [1, 1, 64, 32]),
      ('conv2d_4/kernel', [1, 1, 32, 128]),
      ('conv2d_5/kernel', [1, 1, 64, 256]),
      ('conv2d_6/kernel', [1, 1, 256, 16]), ('conv2d_6/bias', [16]),
      ('conv2d_7/kernel', [1, 1, 16, 256]), ('conv2d_7/bias', [256])]


def _np_conv(x, w, stride):
  """float64 conv, NHWC x HWIO, with the trunk's padding rule."""
  k = w.shape[0]
  if stride > 1 or k > 1:
    # SAME at stride 1 and fixed padding at stride > 1 pad alike for odd k.
    p = (k - 1) // 2, k - 1 - (k - 1) // 2
    x = np.pad(x, [(0, 0), p, p, (0, 0)])
  out_h = (x.shape[1] - k) // stride + 1
  out_w = (x.shape[2] - k) // stride + 1
  out = np.zeros((x.shape[0], out_h, out_w, w.shape[3]))
  for i in range(out_h):
    for j in range(out_w):
      patch = x[:, i * stride:i * stride + k, j * stride:j * stride + k, :]
      out[:, i, j, :] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
  return out


def _np_bn(x, gamma, beta, eps=1e-5):
  axes = tuple(range(x.ndim - 1))
  return (x - x.mean(axes)) / np.sqrt(x.var(axes) + eps) * gamma + beta


def _run_with_random_variables(build, seed):
  """Builds, sets every variable to random values, returns (out, values)."""
  rng = np.random.RandomState(seed)
  with tf.Graph().as_default(), tf.Session() as sess:
    out = build()
    values = {}
    for v in tf.global_variables():
      shape = v.shape.as_list()
      if v.op.name.endswith('moving_variance'):
        value = rng.uniform(0.5, 1.5, shape)
      else:
        value = rng.randn(*shape) * 0.5
      values[v.op.name] = value
      v.load(value.astype(np.float32), sess)
    return sess.run(out), values


@pytest.mark.parametrize('strides', [1, 2])
def test_sk_conv_matches_numpy(strides):
  x = np.random.RandomState(5).randn(3, 6, 6, 4)
  filters, sk_ratio = 40, 0.9  # fc width max(int(36.0), 32) = 36

  def build():
    # pylint: disable=protected-access
    builder = network._Builder(True, None, 0.9, sk_ratio=sk_ratio)
    # pylint: enable=protected-access
    return builder.sk_conv(tf.constant(x, tf.float32), filters, strides)

  out, v = _run_with_random_variables(build, seed=strides)
  assert v['conv2d_1/kernel'].shape == (1, 1, filters, 36)
  y = np.maximum(_np_bn(_np_conv(x, v['conv2d/kernel'], strides),
                        v['batch_normalization/gamma'],
                        v['batch_normalization/beta']), 0)
  a, b = y[..., :filters], y[..., filters:]
  g = (a + b).mean(axis=(1, 2), keepdims=True)
  z = np.maximum(_np_bn(_np_conv(g, v['conv2d_1/kernel'], 1),
                        v['batch_normalization_1/gamma'],
                        v['batch_normalization_1/beta']), 0)
  logits = _np_conv(z, v['conv2d_2/kernel'], 1)
  la, lb = logits[..., :filters], logits[..., filters:]
  wa = 1.0 / (1.0 + np.exp(lb - la))  # softmax over the two branches
  expected = wa * a + (1.0 - wa) * b
  assert out.shape == expected.shape == (3, 6 // strides, 6 // strides, filters)
  np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_squeeze_excite_matches_numpy():
  x = np.random.RandomState(6).randn(2, 3, 3, 16)

  def build():
    # pylint: disable=protected-access
    builder = network._Builder(True, None, 0.9, se_ratio=0.25)
    # pylint: enable=protected-access
    return builder.squeeze_excite(tf.constant(x, tf.float32), 8)

  out, v = _run_with_random_variables(build, seed=0)
  assert v['conv2d/kernel'].shape == (1, 1, 16, 2)  # int(8 * 0.25)
  s = x.mean(axis=(1, 2))
  s = np.maximum(s @ v['conv2d/kernel'][0, 0] + v['conv2d/bias'], 0)
  s = s @ v['conv2d_1/kernel'][0, 0] + v['conv2d_1/bias']
  expected = x / (1.0 + np.exp(-s))[:, None, None, :]
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('strides,size', [(1, 5), (2, 6), (2, 5)])
def test_resnet_d_shortcut_matches_numpy(strides, size):
  x = np.random.RandomState(7).randn(2, size, size, 3)

  def build():
    # pylint: disable=protected-access
    builder = network._Builder(True, None, 0.9, sk_ratio=SK)
    # pylint: enable=protected-access
    return builder.projection(tf.constant(x, tf.float32), 8, strides)

  out, v = _run_with_random_variables(build, seed=1)
  # 2x2 average over the window's in-bounds pixels; padding is at the end
  # (SAME at stride 1, fixed padding (0, 1) + VALID at stride 2).
  n = (size - 1) // strides + 1 if strides == 1 else (size + 1 - 2) // 2 + 1
  pooled = np.zeros((2, n, n, 3))
  for i in range(n):
    for j in range(n):
      window = x[:, i * strides:i * strides + 2, j * strides:j * strides + 2]
      count = window.shape[1] * window.shape[2]
      if strides == 2:
        count = 4  # fixed padding adds zeros that VALID pooling counts
      pooled[:, i, j] = window.sum(axis=(1, 2)) / count
  expected = _np_bn(pooled @ v['conv2d/kernel'][0, 0],
                    v['batch_normalization/gamma'],
                    v['batch_normalization/beta'])
  assert out.shape == expected.shape
  np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('depth,cifar_stem,size', [(50, True, 16),
                                                   (18, False, 32)])
def test_sk_se_variants_train(depth, cifar_stem, size):
  rng = np.random.RandomState(8)
  x = rng.rand(4, size, size, 3).astype(np.float32)
  labels = np.array([0, 1, 2, 1])
  with tf.Graph().as_default(), tf.Session() as sess:
    tf.set_random_seed(0)
    pooled, _ = _build(depth, tf.constant(x), cifar_stem=cifar_stem,
                       sk_ratio=SK, se_ratio=SE)
    logits = tf.layers.dense(pooled, 3)
    loss = tf.losses.sparse_softmax_cross_entropy(labels, logits)
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
      train_op = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    trunk = [v for v in tf.trainable_variables()
             if v.op.name.startswith('base_model/')]
    sess.run(tf.global_variables_initializer())
    before = sess.run(trunk)
    first_loss, _ = sess.run([loss, train_op])
    after_one = sess.run(trunk)
    second_loss, _ = sess.run([loss, train_op])
    after_two = sess.run(trunk)
  assert np.isfinite(first_loss) and np.isfinite(second_loss)
  # Zero-init last BN gammas silence every residual branch (SK and SE inside
  # it) on the first step: only the stem convs/BNs, the 4 projection
  # shortcuts and each block's last BN gamma/beta move.  From the second step
  # on every variable trains.
  changed_one = [not np.array_equal(a, b) for a, b in zip(before, after_one)]
  stem_convs = 1 if cifar_stem else 3
  assert sum(changed_one) == 3 * stem_convs + 4 * 3 + 2 * sum(BLOCKS[depth])
  unchanged = [v.op.name for v, a, b in zip(trunk, after_one, after_two)
               if np.array_equal(a, b)]
  assert not unchanged
  assert any('bias' in v.op.name for v in trunk)


def test_bfloat16_model_fn_train_step(tmp_path):
  import hparams_flags  # pylint: disable=g-import-not-at-top
  import model_fn  # pylint: disable=g-import-not-at-top
  hp = hparams_flags.default_hparams(
      model_dir=str(tmp_path), use_tpu=False, dataset='synthetic',
      image_size=16, resnet_depth=18, train_batch_size=4, proj_out_dim=8,
      num_proj_layers=2, train_summary_steps=0, train_steps=2, use_blur=False,
      use_bfloat16=True, sk_ratio=SK, se_ratio=SE)
  hparams_flags.validate(hp)
  rng = np.random.RandomState(9)
  with tf.Graph().as_default() as graph, tf.Session() as sess:
    features = {'image': tf.constant(rng.rand(4, 16, 16, 6), tf.float32)}
    labels = {'label': tf.constant([0, 1, 2, 3], tf.int32),
              'mask': tf.ones([4])}
    spec = model_fn.build_model_fn(hp, 10, 32)(
        features, labels, tf.estimator.ModeKeys.TRAIN, {'use_tpu': False})
    # Activations in the trunk are bfloat16; variables and the loss float32.
    for name in ('initial_conv', 'block_group1', 'block_group4'):
      assert graph.get_tensor_by_name('base_model/%s:0' % name).dtype == (
          tf.bfloat16), name
    assert graph.get_tensor_by_name('base_model/final_avg_pool:0').dtype == (
        tf.float32)
    assert spec.loss.dtype == tf.float32
    assert all(v.dtype.base_dtype in (tf.float32, tf.int64)
               for v in tf.global_variables())
    sess.run([tf.global_variables_initializer(),
              tf.local_variables_initializer()])
    losses = [sess.run([spec.loss, spec.train_op])[0] for _ in range(2)]
  assert all(np.isfinite(losses))


def test_new_model_flags_parse_and_validate():
  import hparams_flags  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  fv = flags.FlagValues()
  hparams_flags.define_flags(fv)
  fv(['prog', '--width_multiplier=1.5', '--sk_ratio=0.0625',
      '--se_ratio=0.25', '--use_bfloat16', '--model_dir=/tmp/x',
      '--use_tpu=False', '--dataset=synthetic'])
  hp = hparams_flags.hparams_from_flags(fv)
  assert (hp.width_multiplier, hp.sk_ratio, hp.se_ratio, hp.use_bfloat16) == (
      1.5, 0.0625, 0.25, True)
  hparams_flags.validate(hp)
  default = hparams_flags.default_hparams()
  assert (default.sk_ratio, default.se_ratio, default.use_bfloat16) == (
      0.0, 0.0, False)
  for name, value in (('width_multiplier', 0.0), ('width_multiplier', -2.0),
                      ('sk_ratio', 1.0), ('sk_ratio', -0.5),
                      ('se_ratio', 1.5)):
    with pytest.raises(hparams_flags.HParamsError, match='--%s' % name):
      hparams_flags.validate(hp.replace(**{name: value}))
