"""INT8/FP32 CPU speed of the same model files on another machine, with the Python onnxruntime.

Used once for docs/benchmarks.md item 4 ("Speed on another x86 CPU") on a machine where Node is not
installed but the Python onnxruntime (same version as onnxruntime-node, same MLAS kernels) is. Build
the INT8 files here first, e.g.
  fleetctl model quantize --model assets/models/coco-centernet/model.onnx --calib assets/video/vtest.avi \
    --method minmax -o DIR/centernet-int8.onnx --report DIR/centernet-int8.json
then run `python3 bench/ort-int8-speed.py NAME=FP32.onnx,INT8.onnx ...` there; it prints one JSON line per
model and thread count (medians of alternating runs on random input) and writes $OUT/ort-int8-speed.json (copied to bench/results/quantize-other-cpu.json with a measuredOn date).
"""
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort


def sh(cmd: str) -> str:
    return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()


def session(path: str, threads: int) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])


def feed(s: ort.InferenceSession) -> dict:
    i = s.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in i.shape]
    return {i.name: np.random.default_rng(0).random(shape, dtype=np.float32)}


def main() -> None:
    machine = {
        'cpu': sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
        'flags': sh("grep -m1 flags /proc/cpuinfo | tr ' ' '\\n' | grep -E 'avx512_vnni|avx_vnni|amx_int8|avx2' | sort -u | tr '\\n' ' '"),
        'cores': os.cpu_count(),
        'onnxruntime': ort.__version__,
    }
    print(json.dumps(machine), flush=True)
    rows = []
    for threads in (1, 4):
        for arg in sys.argv[1:]:
            name, files = arg.split('=', 1)
            fp32_path, int8_path = files.split(',')
            a, b = session(fp32_path, threads), session(int8_path, threads)
            fa, fb = feed(a), feed(b)
            for _ in range(5):
                a.run(None, fa)
                b.run(None, fb)
            ta: list[float] = []
            tb: list[float] = []
            pairs = ((a, fa, ta), (b, fb, tb))
            for k in range(int(os.environ.get('RUNS', '60'))):
                # Alternate which goes first, so that load hitting one side hits the other too.
                for s, f, t in (pairs if k % 2 == 0 else pairs[::-1]):
                    t0 = time.perf_counter()
                    s.run(None, f)
                    t.append((time.perf_counter() - t0) * 1000)
            row = {'model': name, 'threads': threads, 'fp32_ms': statistics.median(ta), 'int8_ms': statistics.median(tb)}
            row['speed'] = row['fp32_ms'] / row['int8_ms']
            print(json.dumps(row), flush=True)
            rows.append(row)
    with open(os.path.join(os.environ.get('OUT', '.'), 'ort-int8-speed.json'), 'w') as fh:
        json.dump({'machine': machine, 'rows': rows}, fh, indent=1)


if __name__ == '__main__':
    main()
