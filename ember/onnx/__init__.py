"""``ember.onnx``: export a model to ONNX, as ``torch.onnx.export`` does.

    import ember, ember.onnx
    net = ember.vision.models.resnet20().eval()
    ember.onnx.export(net, (ember.randn(1, 3, 32, 32),), "resnet20.onnx",
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})

    import onnxruntime as ort                     # run it anywhere ONNX runs
    sess = ort.InferenceSession("resnet20.onnx")
    sess.run(None, {"input": images})             # any batch size

The exporter traces one forward pass (in eval mode) and writes one ONNX node (or a few) per op;
parameters and buffers become initializers named by their ``state_dict`` keys. It needs the
``onnx`` package (``pip install 'ember[onnx]'``).
"""

from __future__ import annotations

from ember.onnx._graph import UnsupportedOperatorError
from ember.onnx._trace import is_tracing

__all__ = ["UnsupportedOperatorError", "export", "is_in_onnx_export"]


def is_in_onnx_export() -> bool:
    """Whether ``export`` is tracing the forward pass running now (``torch.onnx``'s function).

    A model uses it to skip a shortcut chosen from input values, which the traced graph would
    otherwise freeze (e.g. BERT's "nothing is padded, drop the attention mask")::

        if not ember.onnx.is_in_onnx_export() and bool(mask.all()):
            mask = None
    """
    return is_tracing()


def export(model, args, f=None, input_names=None, output_names=None, dynamic_axes=None,
           opset_version=17, do_constant_folding=True, export_params=True, verbose=False,
           dynamo=False, metadata=None):
    """Trace ``model(*args)`` and write it as an ONNX model to ``f`` (a path or binary file).

    Args:
        model: an ``ember.nn.Module`` (or any callable of Tensors); exported in eval mode.
        args: the example inputs: a Tensor, or a tuple of positional arguments (a trailing dict
            holds keyword arguments). Tensors become graph inputs; other values are fixed.
        f: where to write the model; ``None`` writes nothing (the ModelProto is returned).
        input_names, output_names: graph names of the inputs and of the (flattened) outputs;
            default the ``forward`` argument names and ``output`` / ``output_i``.
        dynamic_axes: ``{name: {axis: symbol}}`` or ``{name: [axis, ...]}`` for inputs and
            outputs whose sizes may change (e.g. ``{"input": {0: "batch"}}``).
        opset_version: the ONNX opset (17 or newer).
        do_constant_folding: precompute ops whose inputs are all constant or parameters.
        export_params: store the weights in the file (otherwise they become graph inputs).
        verbose: print the graph.
        dynamo: accepted for PyTorch compatibility; ember has one exporter (the tracer).
        metadata: ``{key: value}`` strings stored in the model's ``metadata_props``.

    Returns:
        the ``onnx.ModelProto`` written.

    Raises:
        UnsupportedOperatorError: an op has no ONNX conversion (the message names it), or a
            value the graph needs was computed outside ember ops from the inputs.
    """
    from ember.onnx._export import export as _export

    return _export(model, args, f, input_names, output_names, dynamic_axes, opset_version,
                   do_constant_folding, export_params, verbose, metadata)
