"""Augmentation policies: every type's views, seeds, SupCon's magnitude rule, op statistics, warp, eval crops."""

import colorsys
import sys
from unittest import mock

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import augment
import augment_policies
import data_input
import hparams_flags
import model_fn
from tests.test_augment import _numpy_bicubic

TYPES = {
    'simclr': {},
    'autoaugment': dict(augmentation_type='autoaugment'),
    'randaugment': dict(augmentation_type='randaugment',
                        augmentation_magnitude=9.),
    'stacked_randaugment': dict(augmentation_type='stacked_randaugment'),
    'fnc_randaugment': dict(use_randaugment=True),
    'identity': dict(augmentation_type='identity'),
    'pytorch_warp_host_blur': dict(use_pytorch_color_jitter=True,
                                   warp_probability=1.0, defer_blurring=False,
                                   blur_probability=1.0),
}


def _hp(**overrides):
  base = dict(model_dir='/m', use_tpu=False, dataset='synthetic',
              image_size=32)
  base.update(overrides)
  hp = hparams_flags.default_hparams(**base)
  hparams_flags.validate(hp)
  return hp


def _photo(height=48, width=40, seed=0):
  """A smooth uint8 image with colour (the policies' ops act visibly on it)."""
  y, x = np.mgrid[0:height, 0:width]
  rng = np.random.RandomState(seed)
  channels = [np.sin(x / (3. + c) + rng.uniform(0, 6)) *
              np.cos(y / (4. + c)) for c in range(3)]
  return ((np.stack(channels, -1) * 0.45 + 0.5) * 255).astype(np.uint8)


def _views(hp, count, seed=0, image=None, repeats=1):
  """`count` train_view draws of one image through a tf.data map, `repeats` times from fresh iterators."""
  image = _photo() if image is None else image
  with tf.Graph().as_default():
    tf.set_random_seed(seed)
    ds = tf.data.Dataset.from_tensors(tf.constant(image)).repeat(count)
    ds = ds.map(lambda x: augment_policies.train_view(x, hp)).batch(
        count, drop_remainder=True)
    spec = ds.element_spec
    # Graph ops only: no Python call per example in the map.
    ops = {node.op for f in tf.get_default_graph().as_graph_def().library.function
           for node in f.node_def}
    assert not ops & {'PyFunc', 'EagerPyFunc', 'PyFuncStateless'}, ops
    # One traced map function, read by fresh iterators: each starts over.
    outs = [tf.data.make_one_shot_iterator(ds).get_next()
            for _ in range(repeats)]
    with tf.Session() as sess:
      runs = sess.run(outs)
  return (spec, runs[0]) if repeats == 1 else (spec, runs)


# ------------------------------------------------------- every type, views


@pytest.mark.parametrize('name', sorted(TYPES))
def test_every_type_gives_static_float_views_fixed_by_the_seed(name):
  hp = _hp(**TYPES[name])
  spec, (views, again) = _views(hp, 6, seed=5, repeats=2)
  assert spec.shape.as_list() == [6, 32, 32, 3] and spec.dtype == tf.float32
  assert views.dtype == np.float32
  assert views.min() >= 0. and views.max() <= 1.
  np.testing.assert_array_equal(views, again)
  # The draws differ from image to image.
  assert np.abs(views[1:] - views[:1]).reshape(5, -1).max(axis=1).min() > 1e-3


@pytest.mark.parametrize('name', ['simclr', 'pytorch_warp_host_blur'])
def test_another_graph_seed_gives_other_views(name):
  hp = _hp(**TYPES[name])
  first = _views(hp, 3, seed=5)[1]
  np.testing.assert_array_equal(first, _views(hp, 3, seed=5)[1])
  assert np.abs(first - _views(hp, 3, seed=6)[1]).max() > 1e-3


@pytest.mark.parametrize('name', ['autoaugment', 'randaugment',
                                  'stacked_randaugment', 'fnc_randaugment',
                                  'pytorch_warp_host_blur', 'simclr'])
def test_magnitude_zero_leaves_only_crop_and_flip(name):
  hp = _hp(**dict(TYPES[name], augmentation_magnitude=0.))
  assert hp.augmentation_disabled and hp.view_blur_probability == 0
  assert not hp.uses_model_garden
  identity = _hp(augmentation_type='identity')
  np.testing.assert_array_equal(_views(hp, 3, seed=2)[1],
                                _views(identity, 3, seed=2)[1])


def test_simclr_type_is_the_unchanged_simclr_view():
  hp = _hp()
  image = _photo()

  def reference():
    ds = tf.data.Dataset.from_tensors(tf.constant(image)).repeat(4)
    ds = ds.map(lambda x: augment.preprocess_for_train(x, 32)).batch(4)
    return tf.data.make_one_shot_iterator(ds).get_next()

  with tf.Graph().as_default(), tf.Session() as sess:
    tf.set_random_seed(4)
    expected = sess.run(reference())
  np.testing.assert_allclose(_views(hp, 4, seed=4)[1], expected, atol=1e-6)


def test_fnc_views_all_get_randaugment_and_stack_on_channels():
  hp = _hp(loss='fnc', use_randaugment=True, fnc_support_views=1)
  assert hp.view_augmentation == 'stacked_randaugment'
  assert hp.randaugment_magnitude == 7.
  calls = []
  real = augment_policies.randaugment
  with tf.Graph().as_default(), tf.Session() as sess:
    with mock.patch.object(augment_policies, 'randaugment',
                           lambda im, m: calls.append(m) or real(im, m)):
      features = data_input.image_features(hp, tf.constant(_photo()), True)
    # One traced copy draws all three views (tf.map_fn).
    assert calls == [7.]
    assert features['image'].shape.as_list() == [32, 32, 9]
    assert sess.run(features['image']).shape == (32, 32, 9)


def test_use_randaugment_is_for_pretraining_views_only_as_in_fnc():
  assert _hp(use_randaugment=True).view_augmentation == 'stacked_randaugment'
  # FNC's fine-tuning preprocessing is crop and flip, whatever the flag.
  hp = _hp(train_mode='finetune', checkpoint='/ckpt', use_randaugment=True)
  assert hp.view_augmentation == 'simclr' and not hp.uses_model_garden
  assert not augment_policies.host_runs_augmentation(hp)
  # SupCon's types do augment its second stage.
  assert augment_policies.host_runs_augmentation(
      _hp(train_mode='finetune', checkpoint='/ckpt',
          augmentation_type='autoaugment'))


def test_model_garden_policy_composes_with_num_views():
  hp = _hp(loss='supcon', num_views=3, augmentation_type='randaugment',
           augmentation_magnitude=9.)
  calls = []
  real = augment_policies.randaugment
  with tf.Graph().as_default(), tf.Session() as sess:
    tf.set_random_seed(3)
    with mock.patch.object(augment_policies, 'randaugment',
                           lambda im, m: calls.append(m) or real(im, m)):
      features = data_input.image_features(hp, tf.constant(_photo()), True)
    assert features['image'].shape.as_list() == [32, 32, 9]
    views = np.split(sess.run(features['image']), 3, axis=-1)
  assert calls == [9.]  # one traced copy draws all three views
  for i in range(3):
    for j in range(i):
      assert np.abs(views[i] - views[j]).max() > 1e-3, (i, j)


def test_stacked_randaugment_is_jitter_then_randaugment_then_grayscale():
  order, jitter_params = [], []
  real_jitter = augment.apply_color_jitter
  real_randaugment = augment_policies.randaugment
  real_gray = augment.to_grayscale

  def jitter(image, params):
    order.append('jitter')
    jitter_params.append(params)
    return real_jitter(image, params)

  def randaugment(image, magnitude):
    order.append('randaugment %g' % magnitude)
    return real_randaugment(image, magnitude)

  def gray(image):
    order.append('grayscale')
    return real_gray(image)

  with mock.patch.object(augment, 'apply_color_jitter', jitter), \
       mock.patch.object(augment_policies, 'randaugment', randaugment), \
       mock.patch.object(augment, 'to_grayscale', gray):
    with tf.Graph().as_default(), tf.Session() as sess:
      # Each stage consumes the previous one's output, so the order in which
      # they are built is the order in which they apply.
      augment_policies.augment_cropped(
          tf.zeros([32, 32, 3]), _hp(augmentation_type='stacked_randaugment'))
      assert order == ['jitter', 'randaugment 10', 'grayscale']
      # The jitter's own grayscale is off: it comes after RandAugment.
      assert not sess.run(jitter_params[0]['apply_grayscale'])


# ------------------------------------------------------- op statistics


def _recorders(tfm, names):
  """NAME_TO_FUNC replacements: op k shifts a uint8 register right and writes k + 1 first."""
  def make(k):
    def record(image, *unused_args):
      shifted = tf.concat([tf.fill([1, 1], tf.constant(k + 1, tf.uint8)),
                           image[0:1, 0:-1, 0]], axis=1)
      return tf.concat([tf.concat([shifted[..., tf.newaxis],
                                   image[0:1, :, 1:]], axis=2), image[1:]], 0)
    return record
  return {name: make(k) for k, name in enumerate(names)}


def _registers(build_policy, tfm, names, draws):
  """For `draws` images through the policy, the op ids of the register [draws, 8]."""
  with mock.patch.dict(tfm.NAME_TO_FUNC, _recorders(tfm, names)):
    with tf.Graph().as_default(), tf.Session() as sess:
      tf.set_random_seed(11)
      ds = tf.data.Dataset.from_tensors(tf.zeros([2, 8, 3], tf.uint8))
      ds = ds.repeat(draws).map(build_policy).batch(draws)
      out = sess.run(tf.data.make_one_shot_iterator(ds).get_next())
  return out[:, 0, :, 0].astype(np.int64)


def test_randaugment_draws_two_layers_each_uniform_over_its_ops_and_identity():
  tfm = augment_policies.model_garden_augment()
  ops = tfm.RandAugment().available_ops
  assert len(ops) == 16
  draws = 3000
  registers = _registers(lambda x: augment_policies.randaugment(x, 9.), tfm,
                         ops, draws)
  # At most two layers: the third register slot is never written.
  assert (registers[:, 2] == 0).all()
  counts = np.bincount(registers[:, :2].ravel(), minlength=len(ops) + 1)[1:]
  layers = 2 * draws
  # Each layer picks one of 16 ops or nothing, uniformly (p = 1/17 each).
  expected = layers / 17.
  sd = np.sqrt(layers * (1 / 17.) * (16 / 17.))
  assert np.all(np.abs(counts - expected) < 5 * sd), counts
  nothing = layers - counts.sum()
  assert abs(nothing - expected) < 5 * sd


def test_autoaugment_applies_the_v0_subpolicies_with_their_probabilities():
  tfm = augment_policies.model_garden_augment()
  policy = tfm.AutoAugment.policy_v0()
  assert len(policy) == 25 and all(len(sub) == 2 for sub in policy)
  names = sorted({op for sub in policy for op, _, _ in sub})
  draws = 4000
  registers = _registers(augment_policies.autoaugment, tfm, names, draws)
  assert (registers[:, 2] == 0).all()
  counts = np.bincount(registers[:, :2].ravel(), minlength=len(names) + 1)[1:]
  # Expected applications of each op: one sub-policy of 25, uniformly, each
  # op applied with its own probability.
  for k, name in enumerate(names):
    p = sum(prob for sub in policy for op, prob, _ in sub if op == name) / 25.
    sd = np.sqrt(draws * max(p, 1e-3))
    assert abs(counts[k] - draws * p) < 5 * sd + 2, (name, counts[k], draws * p)


def test_missing_model_garden_fails_naming_the_flag_and_the_pip_pin():
  with mock.patch.dict(sys.modules, {'official.vision.ops': None}):
    with pytest.raises(augment_policies.MissingDependencyError) as e:
      augment_policies.check_available(_hp(augmentation_type='autoaugment'))
  assert '--augmentation_type' in str(e.value)
  assert 'pip install tf-models-official==2.15.0' in str(e.value)
  with mock.patch.dict(sys.modules, {'official.vision.ops': None}):
    augment_policies.check_available(_hp())  # simclr needs no Model Garden


def test_run_stops_before_building_anything_without_model_garden(tmp_path):
  import run  # pylint: disable=g-import-not-at-top
  model_dir = tmp_path / 'm'
  hp = _hp(augmentation_type='autoaugment').replace(model_dir=str(model_dir))
  with mock.patch.dict(sys.modules, {'official.vision.ops': None}):
    with pytest.raises(augment_policies.MissingDependencyError,
                       match='--augmentation_type'):
      run.run(hp)
  assert not model_dir.exists()


# ------------------------------------------------------- PyTorch jitter


def _numpy_pytorch_op(image, op, f):
  gray = image @ np.array([0.2989, 0.5870, 0.1140])
  if op == 'brightness':
    out = image * f
  elif op == 'contrast':
    out = image * f + (1 - f) * gray.mean()
  elif op == 'saturation':
    out = image * f + (1 - f) * gray[..., None]
  else:
    flat = image.reshape(-1, 3)
    out = []
    for r, g, b in flat:
      h, s, v = colorsys.rgb_to_hsv(r, g, b)
      out.append(colorsys.hsv_to_rgb((h + f) % 1., s, v))
    out = np.array(out).reshape(image.shape)
  return np.clip(out, 0, 1)


def test_pytorch_jitter_ops_match_torchvision_formulas_in_order():
  image = np.random.RandomState(1).uniform(0, 1, (6, 5, 3))
  params = {'apply_jitter': True, 'brightness': 1.3, 'contrast': 0.6,
            'saturation': 1.7, 'hue': 0.15, 'order': [2, 0, 3, 1]}
  with tf.Graph().as_default(), tf.Session() as sess:
    out = sess.run(augment_policies.apply_pytorch_jitter(
        tf.constant(image, tf.float32),
        {k: tf.constant(v) for k, v in params.items()}))
  expected = image
  for op in params['order']:
    name = ('brightness', 'contrast', 'saturation', 'hue')[op]
    expected = _numpy_pytorch_op(expected, name, params[name])
  np.testing.assert_allclose(out, expected, atol=2e-5)


def test_pytorch_jitter_params_follow_colorjitter_ranges():
  draws = 4000
  with tf.Graph().as_default(), tf.Session() as sess:
    tf.set_random_seed(3)
    params = augment_policies.sample_pytorch_jitter_params(1.5)
    samples = [sess.run(params) for _ in range(draws)]
  for key in ('brightness', 'contrast', 'saturation'):
    values = np.array([s[key] for s in samples])
    # 0.8 s = 1.2: U[max(0, 1 - 1.2), 2.2] = U[0, 2.2] (torchvision clamps at 0).
    assert values.min() >= 0 and values.min() < 0.01
    assert values.max() <= 2.2 and values.max() > 2.19
  hue = np.array([s['hue'] for s in samples])
  assert -0.3 <= hue.min() < -0.29 and 0.29 < hue.max() <= 0.3
  applied = np.mean([s['apply_jitter'] for s in samples])
  assert abs(applied - 0.8) < 5 * np.sqrt(0.16 / draws)
  firsts = np.bincount([s['order'][0] for s in samples], minlength=4) / draws
  assert np.all(np.abs(firsts - 0.25) < 5 * np.sqrt(0.1875 / draws))


def test_pytorch_jitter_rejects_a_hue_range_beyond_half():
  with pytest.raises(hparams_flags.HParamsError, match='use_pytorch_color'):
    _hp(use_pytorch_color_jitter=True, augmentation_magnitude=3.)


# ------------------------------------------------------------------ warp


def test_warp_displacements_are_normal_times_a_uniform_length():
  draws = 4000
  with tf.Graph().as_default(), tf.Session() as sess:
    tf.set_random_seed(8)
    length, flow = augment_policies.sample_warp_flow(4)
    lengths, flows = zip(*[sess.run([length, flow]) for _ in range(draws)])
  lengths, flows = np.array(lengths), np.array(flows)
  assert flows.shape == (draws, 1, 4, 2)
  assert 0 <= lengths.min() < 0.1 and 22.9 < lengths.max() <= 23.
  assert abs(lengths.mean() - 11.5) < 5 * 23 / np.sqrt(12 * draws)
  unit = flows / lengths[:, None, None, None]
  assert abs(unit.mean()) < 0.05 and abs(unit.std() - 1) < 0.03
  # E[(N L)^2] = E[L^2] = 23^2 / 3.
  assert abs(flows.std() - 23 / np.sqrt(3)) < 0.04 * 23 / np.sqrt(3)


def test_warp_control_points_are_the_inner_grid():
  np.testing.assert_allclose(augment_policies.warp_control_points(30),
                             [[[10, 10], [10, 20], [20, 10], [20, 20]]])


def test_warp_moves_content_with_the_control_points():
  image = np.random.RandomState(2).uniform(0, 1, (24, 24, 3)).astype(np.float32)
  shift = np.tile(np.array([[[2., 3.]]], np.float32), [1, 4, 1])
  with tf.Graph().as_default(), tf.Session() as sess:
    still = sess.run(augment_policies.apply_warp(tf.constant(image),
                                                 tf.zeros([1, 4, 2])))
    moved = sess.run(augment_policies.apply_warp(tf.constant(image),
                                                 tf.constant(shift)))
  np.testing.assert_allclose(still, image, atol=1e-5)
  # Every control point moved by (2, 3): the whole image translates.
  np.testing.assert_allclose(moved[2:, 3:], image[:-2, :-3], atol=1e-4)


def test_warp_and_host_blur_apply_with_their_probabilities():
  draws = 600
  image = np.random.RandomState(3).uniform(0, 1, (16, 16, 3)).astype(np.float32)
  for build, p in ((lambda x: augment_policies.random_warp(x, 0.3), 0.3),
                   (lambda x: augment_policies.random_blur(x, 40, 0.6), 0.6)):
    with tf.Graph().as_default(), tf.Session() as sess:
      tf.set_random_seed(1)
      ds = tf.data.Dataset.from_tensors(tf.constant(image)).repeat(draws)
      out = sess.run(tf.data.make_one_shot_iterator(
          ds.map(build).batch(draws)).get_next())
    changed = np.abs(out - image).reshape(draws, -1).max(axis=1) > 1e-4
    assert abs(changed.mean() - p) < 5 * np.sqrt(p * (1 - p) / draws)


# ----------------------------------------------------------- blur placement


def test_deferred_blur_runs_in_model_fn_and_host_blur_does_not():
  for defer, calls in ((True, 2), (False, 0)):
    hp = _hp(blur_probability=0.7, image_size=40, defer_blurring=defer)
    with mock.patch.object(augment, 'batch_random_blur',
                           wraps=augment.batch_random_blur) as blur:
      with tf.Graph().as_default():
        model_fn.training_views(hp, {}, tf.zeros([4, 40, 40, 6]))
    assert blur.call_count == calls
    assert all(c.args[1:] == (40, 0.7) for c in blur.call_args_list)


@pytest.mark.parametrize('kind,probability', [
    ('simclr', 0.5), ('stacked_randaugment', 0.5), ('autoaugment', 0.),
    ('randaugment', 0.), ('identity', 0.)])
def test_only_simclr_style_types_blur_as_in_supcon(kind, probability):
  assert _hp(augmentation_type=kind).view_blur_probability == probability
  assert _hp(augmentation_type=kind, use_blur=False).view_blur_probability == 0


def test_device_color_keeps_non_simclr_policies_on_the_host():
  # RandAugment: the same dispatch as AutoAugment at a tenth of the trace.
  hp = _hp(augmentation_type='randaugment', augment_on_device='color')
  assert not hp.color_on_device
  assert not _hp(augmentation_type='autoaugment',
                 augment_on_device='color').color_on_device
  with mock.patch.object(augment_policies, 'randaugment',
                         wraps=augment_policies.randaugment) as policy:
    with tf.Graph().as_default():  # Model Garden's conds need a tf.data map
      tf.data.Dataset.from_tensors(tf.constant(_photo())).map(
          lambda image: data_input.image_features(hp, image, True))
  # Host-side, once: tf.map_fn draws both views from one traced copy.
  assert policy.call_count == 1 and hp.views_per_example == 2
  assert _hp(augment_on_device='color').color_on_device
  for host_only in (dict(use_pytorch_color_jitter=True),
                    dict(warp_probability=0.5)):
    assert not _hp(augment_on_device='color', **host_only).color_on_device


@pytest.mark.parametrize('kind,jitters,blurs', [
    ('simclr', 2, 2), ('stacked_randaugment', 0, 2), ('autoaugment', 0, 0)])
def test_device_color_jitters_only_simclr_and_blurs_as_supcon(kind, jitters,
                                                               blurs):
  hp = _hp(augmentation_type=kind, augment_on_device='color', image_size=40)
  with mock.patch.object(augment, 'batch_random_color_distortion',
                         wraps=augment.batch_random_color_distortion) as jitter, \
       mock.patch.object(augment, 'batch_random_blur',
                         wraps=augment.batch_random_blur) as blur:
    with tf.Graph().as_default():
      views = model_fn.training_views(hp, {}, tf.zeros([4, 40, 40, 6]))
  assert len(views) == 2
  assert (jitter.call_count, blur.call_count) == (jitters, blurs)


# ------------------------------------------------------------- validation


@pytest.mark.parametrize('overrides,flag', [
    (dict(augmentation_type='autoaugment', use_randaugment=True),
     'use_randaugment'),
    (dict(augmentation_type='autoaugment', warp_probability=0.5),
     'warp_probability'),
    (dict(augmentation_type='randaugment', use_pytorch_color_jitter=True),
     'use_pytorch_color_jitter'),
    (dict(crop_area_range=(0.5, 0.2)), 'crop_area_range'),
    (dict(crop_area_range=(0.5,)), 'crop_area_range'),
    (dict(warp_probability=1.5), 'warp_probability'),
    (dict(augmentation_type='autoaugment', augment_on_device='crop_and_color'),
     'augment_on_device'),
    (dict(warp_probability=0.2, augment_on_device='crop_and_color'),
     'augment_on_device'),
    (dict(defer_blurring=False, augment_on_device='color'), 'defer_blurring'),
    (dict(crop_padding=-1), 'crop_padding'),
])
def test_bad_augmentation_flags_fail_naming_the_flag(overrides, flag):
  with pytest.raises(hparams_flags.HParamsError, match='--' + flag):
    _hp(**overrides)


def test_upper_case_supcon_values_and_list_flags_parse():
  from absl import flags  # pylint: disable=g-import-not-at-top
  fv = flags.FlagValues()
  hparams_flags.define_flags(fv)
  fv(['run', '--augmentation_type=STACKED_RANDAUGMENT',
      '--eval_crop_method=RESIZE_THEN_CROP', '--crop_area_range=0.2,1.0'])
  hp = hparams_flags.hparams_from_flags(fv)
  assert hp.augmentation_type == 'stacked_randaugment'
  assert hp.eval_crop_method == 'resize_then_crop'
  assert hp.crop_area_range == (0.2, 1.0)
  fv2 = flags.FlagValues()
  hparams_flags.define_flags(fv2)
  fv2(['run', '--crop_area_range=a,b'])
  with pytest.raises(hparams_flags.HParamsError, match='--crop_area_range'):
    hparams_flags.hparams_from_flags(fv2)


def test_crop_area_range_bounds_the_crop_area():
  hp = _hp(crop_area_range=(0.3, 0.5))
  with mock.patch.object(augment, 'random_crop_with_resize',
                         wraps=augment.random_crop_with_resize) as crop:
    _views(hp, 1)
  assert crop.call_args.kwargs['area_range'] == (0.3, 0.5)
  with tf.Graph().as_default(), tf.Session() as sess:
    _, size = augment.sample_crop_window(tf.constant([60, 80, 3]), (0.3, 0.5))
    areas = np.array([np.prod(sess.run(size)[:2]) for _ in range(300)]) / 4800.
  fell_back = areas == 1.
  assert fell_back.mean() < 0.05
  assert areas[~fell_back].min() >= 0.29 and areas[~fell_back].max() <= 0.51


# ------------------------------------------------------------- eval crops


def _eval(image, size, method, crop_padding):
  with tf.Graph().as_default(), tf.Session() as sess:
    return sess.run(augment.preprocess_for_eval(
        tf.constant(image), size, method=method, crop_padding=crop_padding))


def test_resize_then_crop_resizes_the_shorter_side_then_crops_the_centre():
  image = np.random.RandomState(5).uniform(0, 1, (48, 48, 3)).astype(np.float32)
  # f = 16 / (16 + 16) = 0.5: shorter side to 32, centre 16 x 16 at (8, 8).
  out = _eval(image, 16, 'resize_then_crop', 16)
  np.testing.assert_allclose(out, _numpy_bicubic(image, 32)[8:24, 8:24],
                             atol=1e-4)


def test_crop_then_resize_and_crop_then_distort_take_their_centres():
  image = np.random.RandomState(6).uniform(0, 1, (40, 80, 3)).astype(np.float32)
  # f = 0.5: a 20 x 20 centre square, or a 20 x 40 centre keeping the aspect.
  square = _eval(image, 20, 'crop_then_resize', 20)
  np.testing.assert_allclose(square, image[10:30, 30:50], atol=1e-5)
  distort = _eval(image, 20, 'crop_then_distort', 20)
  assert distort.shape == (20, 20, 3)
  np.testing.assert_allclose(
      distort, _numpy_bicubic(image[10:30, 20:60], 20), atol=1e-4)


def test_default_eval_crop_is_simclrs_and_padding_32_matches_it_at_224():
  image = _photo(260, 300)
  default = _eval(image, 224, 'crop_then_resize', None)
  with tf.Graph().as_default(), tf.Session() as sess:
    simclr = sess.run(augment.center_crop(tf.constant(image), 224))
  np.testing.assert_allclose(default, simclr, atol=1e-6)
  np.testing.assert_allclose(_eval(image, 224, 'crop_then_resize', 32),
                             simclr, atol=1e-6)


def test_identity_eval_crop_needs_exactly_sized_images():
  image = _photo(32, 32)
  np.testing.assert_allclose(_eval(image, 32, 'identity', None),
                             image / 255., atol=1e-6)
  with pytest.raises(ValueError, match='eval_crop_method=identity'):
    _eval(_photo(40, 32), 32, 'identity', None)
  with tf.Graph().as_default(), tf.Session() as sess:
    unknown = tf.placeholder(tf.uint8, [None, None, 3])
    view = augment.preprocess_for_eval(unknown, 32, method='identity')
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match='eval_crop_method=identity'):
      sess.run(view, {unknown: _photo(40, 32)})
