#!/usr/bin/python3
"""Writes bench/models/heavy.onnx: a synthetic "heavy" ensemble member for the fan-out benchmark.

input [N, 30] float32 (the breast-cancer features) -> MatMul to H hidden units -> a Loop of
ITERATIONS steps of x = Tanh(MatMul(x, W)) -> MatMul to 2 classes -> Softmax: output
"probabilities" [N, 2]. The Loop burns a fixed amount of CPU per row (about 20 ms for one row with
one intra-op thread on the benchmark machine) while the file stays small (the weights are shared by
every step). The numbers it outputs mean nothing: only its run time matters.

Needs only the `onnx` and `numpy` modules (Debian: python3-onnx). Run it with the system
interpreter: /usr/bin/python3 bench/models/make_heavy.py [--iterations N] [--hidden H]
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FEATURES = 30
CLASSES = 2


def build(iterations: int, hidden: int) -> onnx.ModelProto:
    rng = np.random.default_rng(20240601)
    # Small weights keep tanh out of saturation, so every step does real arithmetic on varied values.
    w_in = (rng.standard_normal((FEATURES, hidden)) * 0.001).astype(np.float32)
    w = (rng.standard_normal((hidden, hidden)) / np.sqrt(hidden)).astype(np.float32)
    w_out = (rng.standard_normal((hidden, CLASSES)) * 0.1).astype(np.float32)

    body = helper.make_graph(
        [
            helper.make_node('MatMul', ['x_in', 'W'], ['xw']),
            helper.make_node('Tanh', ['xw'], ['x_out']),
            helper.make_node('Identity', ['cond_in'], ['cond_out']),
        ],
        'step',
        [
            helper.make_tensor_value_info('i', TensorProto.INT64, []),
            helper.make_tensor_value_info('cond_in', TensorProto.BOOL, []),
            helper.make_tensor_value_info('x_in', TensorProto.FLOAT, ['N', hidden]),
        ],
        [
            helper.make_tensor_value_info('cond_out', TensorProto.BOOL, []),
            helper.make_tensor_value_info('x_out', TensorProto.FLOAT, ['N', hidden]),
        ],
    )
    graph = helper.make_graph(
        [
            helper.make_node('MatMul', ['input', 'W_in'], ['x0']),
            helper.make_node('Loop', ['trip_count', 'keep_going', 'x0'], ['x_last'], body=body),
            helper.make_node('MatMul', ['x_last', 'W_out'], ['logits']),
            helper.make_node('Softmax', ['logits'], ['probabilities'], axis=1),
        ],
        'heavy',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, ['N', FEATURES])],
        [helper.make_tensor_value_info('probabilities', TensorProto.FLOAT, ['N', CLASSES])],
        initializer=[
            numpy_helper.from_array(w_in, 'W_in'),
            numpy_helper.from_array(w, 'W'),
            numpy_helper.from_array(w_out, 'W_out'),
            numpy_helper.from_array(np.array(iterations, dtype=np.int64), 'trip_count'),
            numpy_helper.from_array(np.array(True), 'keep_going'),
        ],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid('', 13)],
        producer_name='fanout-bench',
        doc_string=f'synthetic heavy member: {iterations} x MatMul[{hidden}x{hidden}]+Tanh per row',
    )
    # IR 7 is what onnx 1.12 writes by default for opset 13; onnxruntime 1.30 reads it.
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iterations', type=int, default=6400)
    parser.add_argument('--hidden', type=int, default=128)
    parser.add_argument('--out', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), 'heavy.onnx'))
    args = parser.parse_args()
    model = build(args.iterations, args.hidden)
    onnx.save(model, args.out)
    print(f'{args.out}: {os.path.getsize(args.out)} bytes, {args.iterations} steps of {args.hidden}x{args.hidden}')


if __name__ == '__main__':
    main()
