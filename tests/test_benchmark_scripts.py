"""scripts/benchmark_distribute.py and scripts/benchmark_gpu.py: arguments, dry runs, tables, the no-GPU refusal."""

import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'scripts'))

import benchmark_distribute  # pylint: disable=g-import-not-at-top,wrong-import-position
import benchmark_gpu  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_distribute_smoke_shrinks_and_bad_part_is_refused():
  args = benchmark_distribute.parse_args(['--smoke', '--part=overhead'])
  assert (args.parts, args.depth, args.image_size, args.rounds) == (
      ['overhead'], 18, 16, 1)
  with pytest.raises(SystemExit):
    benchmark_distribute.parse_args(['--part=overhead,nope'])


def test_distribute_accuracy_dry_run_prints_both_precisions(capsys, tmp_path):
  benchmark_distribute.main(['--part=accuracy', '--dry_run', '--acc_steps=7',
                             '--seeds=4,5', '--out=' + str(tmp_path)])
  out = capsys.readouterr().out
  for precision in ('float32', 'mixed_bfloat16'):
    for seed in (4, 5):
      assert '--seed=%d --precision=%s --model_dir=%s' % (
          seed, precision,
          os.path.join(str(tmp_path), '%s_seed%d' % (precision, seed))) in out
  assert out.count('--train_steps=7') == 4
  assert not os.listdir(str(tmp_path))  # nothing ran


def test_distribute_report_checks_the_targets():
  args = benchmark_distribute.parse_args([])
  text = benchmark_distribute.report(args, {
      'overhead': {'one_device_ms': 100.0, 'mirrored_ms': 102.0,
                   'ratio': 1.02},
      'speed': {'float32_ms': 100.0, 'bfloat16_ms': 90.0, 'speedup': 1.11}})
  assert '| 100.0 | 102.0 | 1.020 | <= 1.03 met |' in text
  assert '| 100.0 | 90.0 | 1.11x | >= 1.25x NOT met |' in text
  rows = [{'precision': p, 'seed': seed, 'probe': probe, 'knn': None,
           'seconds': 1.0} for p, seed, probe in (
               ('float32', 1, 0.80), ('mixed_bfloat16', 1, 0.78),
               ('float32', 2, 0.79), ('mixed_bfloat16', 2, 0.80))]
  results = {'accuracy': rows}
  text = benchmark_distribute.report(args, results)
  assert '| mixed_bfloat16 | 2 | 0.8000 | - | 1 |' in text
  assert 'mean over 2 seeds: 0.50 points (target within 1: met)' in text
  json.dumps(results)  # main() prints the results as JSON too


def test_gpu_configs_parse_and_bad_ones_are_refused():
  assert benchmark_gpu.parse_config('mixed_float16+xla') == (
      'mixed_float16', True)
  assert benchmark_gpu.parse_config('float32') == ('float32', False)
  with pytest.raises(SystemExit):
    benchmark_gpu.parse_args(['--configs=float32,fp8'])


def test_gpu_benchmark_refuses_to_run_without_a_gpu(monkeypatch):
  monkeypatch.setattr(benchmark_gpu.distribute, 'visible_gpus', lambda: 0)
  with pytest.raises(SystemExit, match='--allow_cpu'):
    benchmark_gpu.main(['--smoke'])


def test_gpu_device_counts_and_table():
  args = benchmark_gpu.parse_args(['--gpus=1,2'])
  assert benchmark_gpu.device_counts(args, 2) == [1, 2]
  with pytest.raises(SystemExit, match='only 1 GPU'):
    benchmark_gpu.device_counts(args, 1)
  assert benchmark_gpu.device_counts(benchmark_gpu.parse_args([]), 4) == [
      1, 2, 3, 4]
  rows = [{'config': 'float32', 'devices': 1, 'views_per_sec_per_device': 10.0},
          {'config': 'float32', 'devices': 2, 'error': 'failed: OOM'}]
  text = benchmark_gpu.table(rows, ['float32', 'mixed_float16'], [1, 2])
  assert '| setting | 1 device | 2 devices |' in text
  assert '| float32 | 10.0 | failed: OOM |' in text
  assert '| mixed_float16 | - | - |' in text


@pytest.mark.slow
def test_gpu_benchmark_cpu_smoke_prints_the_table():
  import subprocess  # pylint: disable=g-import-not-at-top
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'scripts', 'benchmark_gpu.py'),
       '--allow_cpu', '--smoke', '--configs=float32'],
      capture_output=True, text=True, timeout=300,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', CUDA_VISIBLE_DEVICES=''))
  assert proc.returncode == 0, proc.stderr[-3000:]
  row = [l for l in proc.stdout.splitlines() if l.startswith('| float32 |')]
  assert len(row) == 1 and float(row[0].split('|')[2]) > 0, proc.stdout
