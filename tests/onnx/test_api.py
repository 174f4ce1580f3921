"""ember.onnx.export's options and errors: names, files, params, metadata, unsupported ops,
values computed outside ember ops, and the tracer leaving no trace behind."""

import io

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.onnx
from ember.autograd.function import Function
from ember.tensor import Tensor
from tests.onnx._util import Lambda, onnx, ort, roundtrip


def _mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def test_writes_a_file_with_state_dict_names(tmp_path):
    net = _mlp()
    path = tmp_path / "m.onnx"
    ember.onnx.export(net, ember.randn(2, 4), str(path), input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": [0], "y": [0]})
    m = onnx.load(str(path))
    onnx.checker.check_model(m, full_check=True)
    assert {t.name for t in m.graph.initializer} == set(net.state_dict())
    assert [i.name for i in m.graph.input] == ["x"] and [o.name for o in m.graph.output] == ["y"]
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "x_dynamic_axes_1"
    assert m.opset_import[0].version == 17 and m.producer_name == "ember"
    sess = ort.InferenceSession(str(path))
    x = ember.randn(6, 4)
    with ember.no_grad():
        np.testing.assert_allclose(sess.run(None, {"x": x.numpy()})[0], net(x).numpy(),
                                   rtol=1e-3, atol=1e-5)


def test_file_object_opset_and_metadata():
    buf = io.BytesIO()
    ember.onnx.export(_mlp(), (ember.randn(1, 4),), buf, opset_version=18,
                      metadata={"author": "ember"})
    m = onnx.load_from_string(buf.getvalue())
    assert m.opset_import[0].version == 18
    assert {p.key: p.value for p in m.metadata_props} == {"author": "ember"}


def test_export_params_false_makes_weights_inputs():
    m = ember.onnx.export(_mlp(), (ember.randn(1, 4),), None, export_params=False)
    assert not m.graph.initializer
    assert {i.name for i in m.graph.input} >= {"0.weight", "0.bias", "2.weight", "2.bias"}


def test_default_names_come_from_forward():
    class Two(nn.Module):
        def forward(self, image, scale):
            return image * scale, image.sum()

    m = ember.onnx.export(Two(), (ember.randn(2, 3), ember.randn(1)), None)
    assert [i.name for i in m.graph.input] == ["image", "scale"]
    assert [o.name for o in m.graph.output] == ["output_0", "output_1"]


def test_keyword_and_non_tensor_arguments():
    class Scale(nn.Module):
        def forward(self, x, k=1.0, flag=False):
            return x * k if flag else x

    m = ember.onnx.export(Scale(), (ember.randn(2, 3), 3.0, {"flag": True}), None)
    sess = ort.InferenceSession(m.SerializeToString())
    x = np.ones((2, 3), np.float32)
    assert np.allclose(sess.run(None, {m.graph.input[0].name: x})[0], 3.0)


def test_eval_mode_during_export_and_restored():
    net = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.9), nn.BatchNorm1d(4))
    net.train()
    m = ember.onnx.export(net, (ember.randn(3, 4),), None)
    assert net.training and all(mod.training for mod in net.modules())
    assert "BatchNormalization" in [n.op_type for n in m.graph.node]
    assert "Dropout" not in [n.op_type for n in m.graph.node]


def test_unsupported_op_names_the_op():
    net = Lambda(lambda m, x: x.cumprod(1))
    with pytest.raises(ember.onnx.UnsupportedOperatorError,
                       match=r"ONNX export of 'ember\.cumprod' is not supported"):
        ember.onnx.export(net, (ember.randn(2, 3),), None)


def test_unsupported_argument_is_explained():
    net = Lambda(lambda m, q: nn.functional.scaled_dot_product_attention(q, q, q, dropout_p=0.5))
    with pytest.raises(ember.onnx.UnsupportedOperatorError,
                       match="ONNX export of 'ember.attention' with dropout_p > 0 is not"):
        ember.onnx.export(net, (ember.randn(1, 2, 4, 4),), None)


def test_pool_indices_computed_outside_ops_are_refused():
    net = Lambda(lambda m, x: nn.functional.max_pool2d(x, 2, return_indices=True)[1] + 1)
    with pytest.raises(ember.onnx.UnsupportedOperatorError, match="not computed by traced ops"):
        ember.onnx.export(net, (ember.randn(1, 1, 4, 4),), None)


def test_numpy_computed_value_is_refused():
    def fwd(m, x):
        return x + ember.from_numpy(np.sort(x.detach().numpy(), axis=1))

    with pytest.raises(ember.onnx.UnsupportedOperatorError, match="not computed by traced ops"):
        ember.onnx.export(Lambda(fwd), (ember.randn(2, 3),), None)


def test_constant_shaped_by_a_dynamic_axis_is_refused():
    net = Lambda(lambda m, x: x + ember.ones(x.shape[0], 3))
    ember.onnx.export(net, (ember.randn(2, 3),), None)  # fine with a fixed batch
    with pytest.raises(ember.onnx.UnsupportedOperatorError, match="changes with the input"):
        ember.onnx.export(net, (ember.randn(2, 3),), None, input_names=["x"],
                          dynamic_axes={"x": {0: "batch"}})


def test_data_dependent_control_flow_is_refused():
    net = Lambda(lambda m, x: x.exp() if float(x[0, 0]) > 0 else x.tanh())
    x = -ember.ones(4, 8)
    x[0, 0] = 1.0
    with pytest.raises(RuntimeError, match="data-dependent control flow"):
        ember.onnx.export(net, (x,), None)


def test_bad_dynamic_axis_reports_the_model_error():
    net = Lambda(lambda m, x: x.view(2, 3))
    with pytest.raises(RuntimeError, match="fails on inputs resized along dynamic_axes"):
        ember.onnx.export(net, (ember.randn(2, 3),), None, input_names=["x"],
                          dynamic_axes={"x": {0: "b"}})


def test_old_opset_and_missing_inputs_are_errors():
    with pytest.raises(ValueError, match="opset_version >= 17"):
        ember.onnx.export(_mlp(), (ember.randn(1, 4),), None, opset_version=13)
    with pytest.raises(TypeError, match="at least one Tensor"):
        ember.onnx.export(_mlp(), (3,), None)


def test_in_place_ops_are_followed():
    def fwd(m, x):
        y = x * 2
        y += 1
        y.relu_()
        return nn.functional.relu(y - 2, inplace=True)

    roundtrip(Lambda(fwd), (ember.randn(2, 5),), {"in0": [0]}, others=[(ember.randn(4, 5),)])


def test_tracer_restores_everything_even_on_error():
    apply_before = Function.__dict__["apply"]
    names = ("__getitem__", "__eq__", "__lt__", "_inplace", "logical_not")
    before = {n: Tensor.__dict__[n] for n in names}
    with pytest.raises(ember.onnx.UnsupportedOperatorError):
        ember.onnx.export(Lambda(lambda m, x: x.cumprod(0)), (ember.randn(2),), None)
    ember.onnx.export(_mlp(), (ember.randn(1, 4),), None)
    assert Function.__dict__["apply"] is apply_before
    assert all(Tensor.__dict__[n] is f for n, f in before.items())


def test_constant_folding_and_without():
    conv = nn.Conv1d(2, 3, 3)
    net = Lambda(lambda m, x: m.conv(x), conv=conv)
    folded = roundtrip(net, (ember.randn(2, 2, 7),), {"in0": [0]})
    plain = roundtrip(net, (ember.randn(2, 2, 7),), {"in0": [0]}, do_constant_folding=False)
    assert len(plain.graph.node) > len(folded.graph.node)


def test_an_input_the_graph_does_not_read_is_warned_about():
    net = Lambda(lambda m, x, mask: x * 2 if bool(mask.all()) else x * mask)
    with pytest.warns(UserWarning, match="input 'mask' is not used by the exported graph"):
        ember.onnx.export(net, (ember.randn(2, 3), ember.ones(2, 3)), None,
                          input_names=["x", "mask"])
