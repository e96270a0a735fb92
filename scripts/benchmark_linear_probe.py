"""Benchmark: does SimCLR pretraining beat a random encoder under a linear probe?

Pretrains ResNet-18 (32 px) on Fashion-MNIST through run.py for a fixed number
of steps on this machine's CPU, then fits the same multinomial logistic
regression on frozen `final_avg_pool` features of the pretrained encoder and of
a randomly initialised encoder of the same shape, and prints both test
accuracies and the wall time.  Usage:

  .venv/bin/python scripts/benchmark_linear_probe.py --steps=400 --out=runs/probe
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

import hparams_flags  # pylint: disable=wrong-import-position
import linear_probe  # pylint: disable=wrong-import-position
import local_sources  # pylint: disable=wrong-import-position
import resnet  # pylint: disable=wrong-import-position


def pretrain(args, model_dir):
  """Runs the SimCLR pretraining job; returns its wall time in seconds."""
  cmd = [sys.executable, os.path.join(ROOT, 'run.py'), '--use_tpu=False',
         '--mode=train', '--dataset=fashion_mnist', '--image_size=32',
         '--resnet_depth=18', '--train_batch_size=%d' % args.batch,
         '--train_steps=%d' % args.steps, '--optimizer=momentum',
         '--learning_rate=%g' % args.lr, '--warmup_epochs=0',
         '--weight_decay=5e-4', '--temperature=0.5',
         '--color_jitter_strength=0.5', '--use_blur=False',
         '--checkpoint_steps=%d' % args.steps, '--train_summary_steps=50',
         '--model_dir=' + model_dir]
  start = time.time()
  subprocess.run(cmd, check=True)
  return time.time() - start


def extract(hp, limits, checkpoint, calibration_images):
  """{split: (final_avg_pool features, labels)} of the first limits[split] examples.

  One encoder (restored, or randomly initialised with a fixed seed) serves
  every split.  BN moving statistics are first re-estimated on un-augmented
  training images for both encoders, so the random encoder is not judged by
  the meaningless initial statistics (mean 0, variance 1).
  """
  source = local_sources.FashionMnistSource(hp)
  graph = tf.Graph()
  with graph.as_default():
    tf.set_random_seed(1234)
    x = tf.placeholder(tf.uint8, [None, 28, 28])
    rgb = tf.tile(tf.pad(x, [[0, 0], [2, 2], [2, 2]])[..., tf.newaxis],
                  [1, 1, 1, 3])
    rgb = tf.image.convert_image_dtype(rgb, tf.float32)
    encoder = resnet.resnet_v1(18, 1, cifar_stem=True)
    with tf.variable_scope('base_model'):
      encoder(rgb, True)
    recalibrate = tf.group(*tf.get_collection(tf.GraphKeys.UPDATE_OPS))
    with tf.variable_scope('base_model', reuse=True):
      features, _ = encoder(rgb, False)
    init = tf.global_variables_initializer()
    restore = [v for v in tf.global_variables('base_model')
               if 'moving_' not in v.op.name]
    saver = tf.train.Saver(restore)
    out = {}
    with tf.Session() as sess:
      sess.run(init)
      if checkpoint:
        saver.restore(sess, checkpoint)
      for i in range(0, len(calibration_images), 500):
        sess.run(recalibrate, {x: calibration_images[i:i + 500]})
      for split, limit in limits.items():
        images, labels = source._arrays(split)  # pylint: disable=protected-access
        images, labels = images[:limit], labels[:limit]
        feats = [sess.run(features, {x: images[i:i + 500]})
                 for i in range(0, len(images), 500)]
        out[split] = (np.concatenate(feats), labels)
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--steps', type=int, default=400)
  parser.add_argument('--batch', type=int, default=32)
  parser.add_argument('--lr', type=float, default=0.8)
  parser.add_argument('--probe_train_examples', type=int, default=10000)
  parser.add_argument('--out', default=os.path.join(ROOT, 'runs', 'probe'))
  parser.add_argument('--reuse_pretrained', action='store_true',
                      help='Probe an existing pretraining run in --out.')
  args = parser.parse_args()
  tf.disable_v2_behavior()
  model_dir = os.path.join(args.out, 'pretrain')
  if args.reuse_pretrained and tf.train.latest_checkpoint(model_dir):
    pretrain_secs = float('nan')  # reused from an earlier run
  else:
    pretrain_secs = pretrain(args, model_dir)
  ckpt = tf.train.latest_checkpoint(model_dir)
  hp = hparams_flags.default_hparams(dataset='fashion_mnist', model_dir='/unused',
                                     use_tpu=False)
  results = {'pretrain_steps': args.steps, 'batch': args.batch,
             'pretrain_seconds': round(pretrain_secs, 1), 'checkpoint': ckpt}
  calibration = local_sources.FashionMnistSource(hp)._arrays('train')[0][:10000]  # pylint: disable=protected-access
  for name, checkpoint in (('random_init', None), ('simclr_pretrained', ckpt)):
    data = extract(hp, {'train': args.probe_train_examples, 'test': 10000},
                   checkpoint, calibration)
    (train_x, train_y), (test_x, test_y) = data['train'], data['test']
    results[name + '_probe_accuracy'] = linear_probe.probe_accuracy(
        train_x, train_y, test_x, test_y, 10)
  results['gain_points'] = round(100 * (results['simclr_pretrained_probe_accuracy']
                                        - results['random_init_probe_accuracy']), 2)
  print(json.dumps(results, indent=2))
  with open(os.path.join(args.out, 'linear_probe.json'), 'w') as f:
    json.dump(results, f, indent=2)


if __name__ == '__main__':
  main()
