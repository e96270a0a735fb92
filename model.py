"""The network: ResNet encoder -> projection head -> supervised head, and which variables train.

`forward` is the one place that builds the model graph; model_fn, the
exports and the restore plan all call it, so they cannot drift apart.
"""

import re

import tensorflow.compat.v1 as tf

import names
import precision
import resnet


def _dense(x, units, use_bias, zero_init=False):
  init = (tf.zeros_initializer() if zero_init
          else tf.random_normal_initializer(stddev=0.01))
  return tf.layers.dense(x, units, use_bias=use_bias, kernel_initializer=init,
                         bias_initializer=tf.zeros_initializer())


def head_layer_trains(hp, layer):
  """Whether projection-head layer `layer` trains (in finetune: those below ft_proj_selector)."""
  if hp.is_pretrain:
    return True
  selector = hp.ft_proj_selector
  return layer < (names.num_projection_layers(hp) if selector < 0
                  else selector)


def projection_head(hp, hiddens, is_training, ctx):
  """SimCLR projection head; returns (output, [encoder output, layer 1, ...]).

  In finetune the layers above ft_proj_selector feed nothing that trains: they
  keep their restored weights and run BN in inference mode.
  """
  outputs = [hiddens]
  x = hiddens
  bn = lambda x, j, center: resnet.batch_norm.batch_norm(  # pylint: disable=g-long-lambda
      x, is_training and head_layer_trains(hp, j), ctx,
      decay=hp.batch_norm_decay, center=center)
  with tf.variable_scope(names.CONTRASTIVE_HEAD):
    if hp.proj_head_mode == 'linear':
      with tf.variable_scope('l_0'):
        x = bn(_dense(x, hp.proj_out_dim, use_bias=False), 0, center=False)
      outputs.append(x)
    elif hp.proj_head_mode == 'nonlinear':
      width = int(hiddens.shape[-1])
      for j in range(hp.num_proj_layers):
        last = j == hp.num_proj_layers - 1
        with tf.variable_scope('nl_%d' % j):
          x = _dense(x, hp.proj_out_dim if last else width, use_bias=False)
          x = bn(x, j, center=not last)
          if not last:
            x = tf.nn.relu(x)
        outputs.append(x)
  return tf.identity(x, 'proj_head_output'), outputs


def supervised_head(hp, inputs, num_classes):
  """The linear classifier `head_supervised`."""
  with tf.variable_scope(names.SUPERVISED_HEAD):
    with tf.variable_scope('linear_layer'):
      logits = _dense(inputs, num_classes, use_bias=True,
                      zero_init=hp.zero_init_logits_layer)
  for v in tf.trainable_variables(names.SUPERVISED_HEAD):
    tf.add_to_collection(names.block_collection(names.SUPERVISED_BLOCK), v)
  return logits


def embed(hp, images, is_training, bn_ctx):
  """Encoder -> projection head: (hiddens, ResNet endpoints, head output, head layer outputs)."""
  freeze_encoder = (not hp.is_pretrain) and hp.fine_tune_after_block >= 4
  with tf.variable_scope(names.ENCODER_SCOPE):
    encoder = resnet.resnet_v1(
        hp.resnet_depth, hp.width_multiplier, cifar_stem=hp.image_size <= 32,
        batch_norm_decay=hp.batch_norm_decay, ctx=bn_ctx,
        fine_tune_after_block=-1 if hp.is_pretrain else hp.fine_tune_after_block,
        sk_ratio=hp.sk_ratio, se_ratio=hp.se_ratio)
    # Low-precision trunk (--precision / --use_bfloat16): the layers create
    # float32 variables and cast them to the activation dtype (what
    # tf.tpu.bfloat16_scope does); BN moments are float32.  Endpoints are
    # handed out as float32.
    dtype = precision.compute_dtype(hp)
    if dtype != tf.float32:
      images = tf.cast(images, dtype)
    with precision.trunk_jit_scope(hp):
      hiddens, endpoints = encoder(
          images, is_training=is_training and not freeze_encoder)
    endpoints = {k: tf.cast(v, tf.float32) for k, v in endpoints.items()}
  hiddens = tf.cast(hiddens, tf.float32)
  proj_out, head_outputs = projection_head(hp, hiddens, is_training, bn_ctx)
  return hiddens, endpoints, proj_out, head_outputs


def forward(hp, images, is_training, bn_ctx, num_classes):
  """Encoder -> projection head -> supervised head; the named outputs.

  Outputs: the ResNet endpoints (initial_conv, initial_max_pool,
  block_group1..4, final_avg_pool), proj_head_input, proj_head_output and,
  when a supervised head exists, logits_sup — fed exactly as in training
  (ft_proj_selector's head layer in finetune).
  """
  hiddens, endpoints, proj_out, head_outputs = embed(hp, images, is_training,
                                                     bn_ctx)
  if not hp.is_pretrain:
    sup_input = head_outputs[hp.ft_proj_selector]
  elif hp.is_contrastive:
    sup_input = tf.stop_gradient(hiddens)  # online linear evaluation
  else:
    sup_input = hiddens  # the supervised cross-entropy baseline
  outputs = dict(endpoints)
  outputs.update(final_avg_pool=hiddens, proj_head_input=hiddens,
                 proj_head_output=proj_out)
  if not hp.is_contrastive or hp.lineareval_while_pretraining:
    outputs['logits_sup'] = supervised_head(hp, sup_input, num_classes)
  return outputs


_HEAD_LAYER = re.compile(r'%s/n?l_(\d+)/' % names.CONTRASTIVE_HEAD)


def _frozen_head_variable(hp, variable):
  layer = _HEAD_LAYER.match(variable.op.name)
  return bool(layer) and not head_layer_trains(hp, int(layer.group(1)))


def trainable_variables(hp):
  """Variables of the current graph that the optimizer updates.

  In finetune, fine_tune_after_block freezes the blocks up to it, and the
  projection-head layers from ft_proj_selector up stay frozen.
  """
  variables = tf.trainable_variables()
  if hp.is_pretrain:
    return variables
  variables = [v for v in variables if not _frozen_head_variable(hp, v)]
  if hp.fine_tune_after_block < 0:
    return variables
  frozen = set()
  for k in range(hp.fine_tune_after_block + 1):
    frozen.update(id(v) for v in tf.get_collection(names.block_collection(k)))
  return [v for v in variables if id(v) not in frozen]

