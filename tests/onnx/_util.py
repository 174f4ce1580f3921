"""Shared helpers of the ONNX tests: export, check, run in onnxruntime, compare with ember."""

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

RTOL, ATOL = 1e-3, 1e-5  # the tolerance for onnxruntime vs ember


class Lambda(nn.Module):
    """A module around a function, for exporting single ops."""

    def __init__(self, fn, **modules):
        super().__init__()
        self.fn = fn
        for k, m in modules.items():
            setattr(self, k, m)

    def forward(self, *xs):
        return self.fn(self, *xs)


def _flat(out):
    if isinstance(out, ember.Tensor):
        return [out.numpy(force=True)]
    res = []
    if out is None:
        return res
    for o in out:
        res += _flat(o)
    return res


def roundtrip(model, inputs, dynamic=None, others=(), full_check=True, **kw):
    """Export ``model`` with ``inputs`` (a tuple of Tensors named in0, in1...), check the file,
    and compare onnxruntime with ember on ``inputs`` and on each tuple in ``others``."""
    model.eval()
    names = [f"in{i}" for i in range(len(inputs))]
    proto = ember.onnx.export(model, tuple(inputs), None, input_names=names,
                              dynamic_axes=dynamic, **kw)
    onnx.checker.check_model(proto, full_check=full_check)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    for xs in [tuple(inputs)] + [tuple(o) for o in others]:
        with ember.no_grad():
            want = _flat(model(*xs))
        got = sess.run(None, {n: x.numpy() for n, x in zip(names, xs)})
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape, (g.shape, w.shape)
            np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)
    return proto


def op_types(proto):
    return [n.op_type for n in proto.graph.node]
