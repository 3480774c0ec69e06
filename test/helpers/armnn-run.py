"""Runs a .tflite file in Debian's Arm NN (pyarmnn, CpuRef backend) and prints its outputs as JSON.

usage: /usr/bin/python3 armnn-run.py MODEL.tflite [INPUT.f32|--load-only] [OUTPUT_DIR]
INPUT.f32 is the raw float32 input (zeros when absent); each output is written to OUTPUT_DIR/<i>.f32.
--load-only parses and optimizes the network for CpuRef without running it (CpuRef is a slow
reference backend: a 512x512 MobileNetV3 takes about 40 s on two cores).
"""
import sys, numpy as np, pyarmnn as ann
path = sys.argv[1]
parser = ann.ITfLiteParser()
net = parser.CreateNetworkFromBinaryFile(path)
gid = 0
names = parser.GetSubgraphInputTensorNames(gid)
outs = parser.GetSubgraphOutputTensorNames(gid)
rt = ann.IRuntime(ann.CreationOptions())
opt, msgs = ann.Optimize(net, [ann.BackendId('CpuRef')], rt.GetDeviceSpec(), ann.OptimizerOptions())
nid, _ = rt.LoadNetwork(opt)
import json, os
if len(sys.argv) > 2 and sys.argv[2] == "--load-only":
    def dims(info):
        return [info[1].GetShape()[i] for i in range(info[1].GetNumDimensions())]
    print(json.dumps({"inputs": list(names), "outputs": [{"name": n, "shape": dims(parser.GetNetworkOutputBindingInfo(gid, n))} for n in outs]}))
    sys.exit(0)
ib = parser.GetNetworkInputBindingInfo(gid, names[0])
shape = tuple(ib[1].GetShape()[i] for i in range(ib[1].GetNumDimensions()))
x = np.fromfile(sys.argv[2], dtype=np.float32).reshape(shape) if len(sys.argv) > 2 else np.zeros(shape, np.float32)
inputs = ann.make_input_tensors([ib], [x])
obs = [parser.GetNetworkOutputBindingInfo(gid, n) for n in outs]
ot = ann.make_output_tensors(obs)
rt.EnqueueWorkload(nid, inputs, ot)
res = ann.workload_tensors_to_ndarray(ot)
if len(sys.argv) > 3:
    for i, r in enumerate(res):
        r.astype(np.float32).tofile(os.path.join(sys.argv[3], f"{i}.f32"))
print(json.dumps({"inputs": list(names), "outputs": [{"name": n, "shape": list(r.shape)} for n, r in zip(outs, res)]}))
