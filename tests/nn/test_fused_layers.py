"""The heavy layers are single fused ops (issue 3, DESIGN.md "An op"): the graph a layer records
holds its one op and the leaves, not a chain of small elementwise nodes."""

import pytest

import ember
from ember import nn

F = nn.functional


def _graph(y):
    names, seen, stack = [], set(), [y.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if type(node).__name__ != "_AccumulateGrad":
            names.append(type(node).__name__)
        stack.extend(nx[0] if isinstance(nx, tuple) else nx for nx in node.next_functions)
    return sorted(names)


def _x(*shape):
    return ember.randn(*shape, requires_grad=True)


CASES = [
    ("Linear", lambda: nn.Linear(5, 3)(_x(4, 5)), ["Linear"]),
    ("Conv2d", lambda: nn.Conv2d(3, 4, 3, padding=1, groups=1)(_x(2, 3, 8, 8)), ["Conv2dOp"]),
    ("ConvTranspose2d", lambda: nn.ConvTranspose2d(3, 4, 3, stride=2)(_x(2, 3, 8, 8)),
     ["ConvTranspose2dOp"]),
    ("MaxPool2d", lambda: nn.MaxPool2d(2)(_x(2, 3, 8, 8)), ["MaxPool2dOp"]),
    ("AvgPool2d", lambda: nn.AvgPool2d(3, 2, 1)(_x(2, 3, 8, 8)), ["AvgPool2dOp"]),
    ("AdaptiveAvgPool2d", lambda: nn.AdaptiveAvgPool2d(3)(_x(2, 3, 8, 8)),
     ["AdaptiveAvgPool2dOp"]),
    ("BatchNorm2d", lambda: nn.BatchNorm2d(3)(_x(2, 3, 8, 8)), ["BatchNormOp"]),
    ("LayerNorm", lambda: nn.LayerNorm(8)(_x(2, 3, 8)), ["LayerNormOp"]),
    ("GroupNorm", lambda: nn.GroupNorm(3, 6)(_x(2, 6, 8)), ["GroupNormOp"]),
    ("LSTM", lambda: nn.LSTM(4, 6)(_x(5, 2, 4))[0], ["LSTMLayer"]),
    ("GRU", lambda: nn.GRU(4, 6)(_x(5, 2, 4))[0], ["GRULayer"]),
    ("RNN", lambda: nn.RNN(4, 6)(_x(5, 2, 4))[0], ["RNNLayer"]),
    ("cross_entropy", lambda: F.cross_entropy(_x(4, 10), ember.tensor([1, 2, 3, 4])), None),
    ("scaled_dot_product_attention",
     lambda: F.scaled_dot_product_attention(_x(2, 3, 4, 5), _x(2, 3, 6, 5), _x(2, 3, 6, 5)),
     ["Attention"]),
]


@pytest.mark.parametrize("name,run,ops", CASES, ids=[c[0] for c in CASES])
def test_heavy_layer_is_one_op(name, run, ops):
    graph = _graph(run())
    assert len(graph) == 1, f"{name} records {graph}"
    if ops is not None:
        assert graph == ops


def test_whole_recurrent_sequence_is_one_op_per_layer_and_direction():
    graph = _graph(nn.LSTM(4, 6, num_layers=2, bidirectional=True)(_x(7, 2, 4))[0])
    assert graph.count("LSTMLayer") == 4  # 2 layers x 2 directions, whatever the length
    assert set(graph) <= {"LSTMLayer", "Cat"}
