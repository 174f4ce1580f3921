"""nn.Module against torch's behaviour: registration, iteration, state_dict/load_state_dict
reports, forward/backward hooks, repr, to/apply/zero_grad, containers."""

from collections import OrderedDict

import numpy as np
import pytest
import torch

import ember
from tests.harness import copy_params


def net(n):
    class Net(n.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = n.Linear(4, 8)
            self.act = n.ReLU()
            self.block = n.Sequential(n.Linear(8, 8), n.Tanh())
            self.head = n.Linear(8, 3, bias=False)
            self.register_buffer("steps", (torch if n is torch.nn else ember).zeros(1))
            self.register_buffer("scratch", (torch if n is torch.nn else ember).zeros(2),
                                 persistent=False)

        def forward(self, x):
            return self.head(self.block(self.act(self.fc1(x))))

    return Net()


def test_names_and_iteration_match_torch():
    t, e = net(torch.nn), net(ember.nn)
    assert [k for k, _ in e.named_parameters()] == [k for k, _ in t.named_parameters()]
    assert [k for k, _ in e.named_buffers()] == [k for k, _ in t.named_buffers()]
    assert [k for k, _ in e.named_modules()] == [k for k, _ in t.named_modules()]
    assert [k for k, _ in e.named_children()] == [k for k, _ in t.named_children()]
    assert list(e.state_dict()) == list(t.state_dict())
    assert repr(e) == repr(t)
    assert e.get_submodule("block.0") is e.block[0]
    assert e.get_parameter("block.0.bias") is e.block[0].bias


def test_state_dict_interchange_and_outputs():
    t, e = net(torch.nn), net(ember.nn)
    copy_params(t, e)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(e(ember.tensor(x)).detach().numpy(), t(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    t2 = net(torch.nn)
    t2.load_state_dict({k: torch.tensor(v.numpy()) for k, v in e.state_dict().items()})
    np.testing.assert_allclose(t2(torch.tensor(x)).detach().numpy(), t(torch.tensor(x)).detach().numpy(),
                               rtol=1e-6)


def _msg(fn):
    with pytest.raises(RuntimeError) as ei:
        fn()
    return str(ei.value)


def test_load_state_dict_reports_like_torch():
    t, e = net(torch.nn), net(ember.nn)
    sd_t = t.state_dict()
    del sd_t["fc1.bias"]
    sd_t["extra.weight"] = torch.zeros(1)
    sd_e = {k: ember.tensor(v.numpy()) for k, v in sd_t.items()}
    mt, me = _msg(lambda: t.load_state_dict(sd_t)), _msg(lambda: e.load_state_dict(sd_e))
    assert me == mt.replace("torch.", "ember.")
    rt, re_ = t.load_state_dict(sd_t, strict=False), e.load_state_dict(sd_e, strict=False)
    assert re_.missing_keys == rt.missing_keys and re_.unexpected_keys == rt.unexpected_keys
    ok = e.load_state_dict(e.state_dict())
    assert repr(ok) == "<All keys matched successfully>"


def test_load_state_dict_size_mismatch():
    e = ember.nn.Linear(3, 2)
    msg = _msg(lambda: e.load_state_dict({"weight": ember.zeros(3, 3), "bias": ember.zeros(2)}))
    assert "size mismatch for weight: copying a param with shape ember.Size([3, 3]) from " \
           "checkpoint, the shape in current model is ember.Size([2, 3])." in msg
    assert msg.startswith("Error(s) in loading state_dict for Linear:")


def test_forward_hooks_match_torch():
    def run(n, lib):
        lib.manual_seed(0)
        m = n.Linear(3, 2)
        log = []
        m.register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
        m.register_forward_pre_hook(lambda mod, args, kw: log.append(sorted(kw)) or None,
                                    with_kwargs=True)
        h = m.register_forward_hook(lambda mod, args, out: out + 1)
        m.register_forward_hook(lambda mod, args, kw, out: log.append(tuple(out.shape)),
                                with_kwargs=True, prepend=True)
        x = lib.ones(4, 3)
        y1 = m(x)
        h.remove()
        y2 = m(x)
        return log, (y1 - y2).detach().numpy()

    (lt, dt), (le, de) = run(torch.nn, torch), run(ember.nn, ember)
    assert lt == le
    np.testing.assert_allclose(de, dt)


def test_forward_hook_always_call_runs_when_forward_raises():
    # torch runs the forward hooks registered with always_call=True (output None) when the
    # forward or a later hook raises, silencing their own errors with a warning; ember ignored it
    def run(n, lib):
        log = []
        m = n.Linear(2, 2)
        m.register_forward_hook(lambda mod, args, out: log.append(("always", out)),
                                always_call=True)
        m.register_forward_hook(lambda mod, args, kw, out: log.append(("kw", out, kw)),
                                with_kwargs=True, always_call=True)
        m.register_forward_hook(lambda mod, args, out: log.append("plain"))
        m.register_forward_hook(lambda mod, args, out: 1 / 0, always_call=True)
        with pytest.warns(UserWarning, match="raised an exception that was silenced"):
            with pytest.raises(RuntimeError):
                m(lib.ones(1, 3))
        m2 = n.Linear(2, 2)
        m2.register_forward_hook(lambda mod, args, out: log.append("ran"), always_call=True)
        m2.register_forward_hook(lambda mod, args, out: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            m2(lib.ones(1, 2))  # the always_call hook already ran: not run twice
        return log

    assert run(ember.nn, ember) == run(torch.nn, torch) == [
        ("always", None), ("kw", None, {}), "ran"]


@pytest.mark.parametrize("case", [
    lambda L: L.nn.Linear(1, 1).register_buffer("weight", L.ones(1)),
    lambda L: L.nn.Sequential(L.nn.Linear(1, 1)).register_buffer("0", L.ones(1)),
    lambda L: L.nn.Sequential(L.nn.Linear(1, 1)).register_parameter("0", None),
    lambda L: L.nn.Linear(1, 1).add_module("weight", L.nn.ReLU()),
    lambda L: L.nn.BatchNorm1d(2).register_parameter("running_mean", None),
    lambda L: L.nn.Linear(1, 1).register_buffer("a.b", None),
    lambda L: L.nn.Linear(1, 1).register_parameter("a.b", None),
    lambda L: L.nn.Linear(1, 1).add_module("a.b", None),
])
def test_register_name_taken_by_another_kind_raises_like_torch(case):
    # torch: KeyError "attribute 'weight' already exists" when a buffer would take a
    # parameter's name (or any other kind's); ember registered both, and state_dict kept one
    msgs = []
    for lib in (torch, ember):
        with pytest.raises(KeyError) as info:
            case(lib)
        msgs.append(str(info.value))
    assert msgs[1] == msgs[0]


def _hooked(n, lib, input_grad=True):
    lib.manual_seed(0)
    m = n.Sequential(n.Linear(3, 4), n.ReLU(), n.Linear(4, 2))
    rng = np.random.default_rng(0)
    with lib.no_grad():
        for p in m.parameters():
            p.copy_(lib.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32)))
    log = []

    def pre(mod, go):
        log.append(("pre", type(mod).__name__, [tuple(g.shape) for g in go]))
        return (go[0] * 3,)

    def full(mod, gi, go):
        log.append(("full", type(mod).__name__, [None if g is None else tuple(g.shape) for g in gi],
                    [round(float(g.sum()), 4) for g in go]))
        return None if gi[0] is None else (gi[0] * 2,)

    for mod in (m[0], m[2], m):
        mod.register_full_backward_pre_hook(pre)
        mod.register_full_backward_hook(full)
    x = lib.ones(5, 3, requires_grad=input_grad)
    m(x).sum().backward()
    return log, (x.grad.numpy() if input_grad else None), m[0].weight.grad.numpy()


@pytest.mark.parametrize("input_grad", [True, False])
def test_full_backward_hooks_match_torch(input_grad):
    lt, gxt, gwt = _hooked(torch.nn, torch, input_grad)
    le, gxe, gwe = _hooked(ember.nn, ember, input_grad)
    assert le == lt
    if input_grad:
        np.testing.assert_allclose(gxe, gxt, rtol=1e-5)
    np.testing.assert_allclose(gwe, gwt, rtol=1e-5)


def test_backward_hook_wrong_count_raises():
    m = ember.nn.Linear(2, 2)
    m.register_full_backward_hook(lambda mod, gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match="invalid number of grad_input, got 2, but expected 1"):
        m(ember.ones(1, 2, requires_grad=True)).sum().backward()


def test_to_apply_zero_grad_requires_grad():
    e = net(ember.nn)
    assert e.to("cpu") is e and e.to(ember.device("cpu")) is e and e.cpu() is e
    e.to(ember.float64)
    assert all(p.dtype == ember.float64 for p in e.parameters())
    assert e.steps.dtype == ember.float64
    e.float()
    seen = []
    e.apply(lambda m: seen.append(type(m).__name__))
    tseen = []
    net(torch.nn).apply(lambda m: tseen.append(type(m).__name__))
    assert seen == tseen  # post-order: children first, the root last
    e(ember.ones(2, 4)).sum().backward()
    assert all(p.grad is not None for p in e.parameters())
    e.zero_grad(set_to_none=False)
    assert all((p.grad.numpy() == 0).all() for p in e.parameters())
    e.zero_grad()
    assert all(p.grad is None for p in e.parameters())
    e.requires_grad_(False)
    assert not any(p.requires_grad for p in e.parameters())
    with pytest.raises(TypeError, match="only accepts floating point dtypes"):
        e.to(ember.int64)
    assert not e.eval().training and not e.block[0].training
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        e.train("yes")


def test_train_eval_propagates_and_dropout_obeys():
    m = ember.nn.Sequential(ember.nn.Linear(4, 4), ember.nn.Dropout(0.5))
    m.eval()
    x = ember.randn(3, 4)
    np.testing.assert_array_equal(m(x).detach().numpy(), m[0](x).detach().numpy())


def test_registration_errors():
    m = ember.nn.Module()
    with pytest.raises(TypeError, match=r"cannot assign 'ember.FloatTensor' as parameter 'w' "
                                        r"\(ember.nn.Parameter or None expected\)"):
        m.w = ember.nn.Parameter(ember.ones(1))
        m.w = ember.ones(1)
    with pytest.raises(KeyError, match="contain"):
        m.register_buffer("a.b", ember.ones(1))
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'nope'"):
        m.nope
    with pytest.raises(NotImplementedError, match='missing the required "forward" function'):
        m(1)


def test_containers_match_torch():
    def build(n):
        return n.ModuleDict({"a": n.Linear(2, 2), "b": n.ModuleList([n.ReLU(), n.Linear(2, 1)])})

    t, e = build(torch.nn), build(ember.nn)
    assert repr(e) == repr(t)
    assert list(e.state_dict()) == list(t.state_dict())
    s = ember.nn.Sequential(OrderedDict([("x", ember.nn.Linear(2, 3)), ("y", ember.nn.ReLU())]))
    assert list(dict(s.named_children())) == ["x", "y"] and isinstance(s[-1], ember.nn.ReLU)
    assert len(s[:1]) == 1
    s.append(ember.nn.Tanh())
    assert len(s) == 3
    pl = ember.nn.ParameterList([ember.nn.Parameter(ember.ones(2)), ember.ones(3)])
    assert [k for k, _ in pl.named_parameters()] == ["0", "1"] and pl[1].requires_grad
    with pytest.raises(IndexError, match="index 5 is out of range"):
        s[5]


def _bn_net(n):
    return n.Sequential(n.Linear(3, 2), n.BatchNorm1d(2), n.Sequential(n.Linear(2, 2, bias=False)),
                        n.InstanceNorm1d(2))


LOAD_CASES = {
    "size_mismatch": lambda L, sd: {**sd, "0.weight": L.zeros(3, 3)},
    "missing_and_unexpected_nested": lambda L, sd: {
        **{k: v for k, v in sd.items() if not k.startswith("2.")}, "9.x": L.zeros(1),
        "2.0.bias": L.zeros(2), "0.weight": L.zeros(1)},
    "unexpected_under_a_buffer": lambda L, sd: {**sd, "1.running_mean.extra": L.zeros(1)},
    "old_bn_without_num_batches_tracked": lambda L, sd: {
        k: v for k, v in sd.items() if k != "1.num_batches_tracked"},
    "pre_0_4_instancenorm_stats": lambda L, sd: {**sd, "3.running_mean": L.zeros(2),
                                                 "3.running_var": L.ones(2)},
    "unexpected_key_first_in_order": lambda L, sd: {"2.0.extra": L.zeros(1), **sd,
                                                    "zz": L.zeros(1)},
}


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("case", list(LOAD_CASES))
def test_load_state_dict_errors_and_results_equal_torchs(case, strict):
    """Plain dicts (no _metadata), as converted checkpoints are: same text, same key lists."""
    def run(n, lib):
        m = _bn_net(n)
        sd = LOAD_CASES[case](lib, dict(m.state_dict()))
        try:
            return repr(m.load_state_dict(sd, strict=strict))
        except RuntimeError as ex:
            return "RuntimeError: " + str(ex)

    assert run(ember.nn, ember) == run(torch.nn, torch).replace("torch.", "ember.")


def test_state_dict_metadata_versions_match_torch():
    e, t = _bn_net(ember.nn).state_dict(), _bn_net(torch.nn).state_dict()
    assert dict(e._metadata) == {k: {"version": v["version"]} for k, v in t._metadata.items()}
    # with version 2 recorded, a missing num_batches_tracked is an error again (as in torch)
    del e["1.num_batches_tracked"]
    with pytest.raises(RuntimeError, match='Missing key.*"1.num_batches_tracked"'):
        _bn_net(ember.nn).load_state_dict(e)


def test_load_state_dict_post_hooks_of_children_run_and_assign():
    m = ember.nn.Sequential(ember.nn.Linear(2, 2))
    seen = []
    m[0].register_load_state_dict_post_hook(lambda mod, keys: seen.append(type(mod).__name__))
    m.register_load_state_dict_post_hook(lambda mod, keys: seen.append(type(mod).__name__))
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    m.load_state_dict(sd)
    assert seen == ["Linear", "Sequential"]  # torch's order: a child's hook, then its parent's
    w = ember.ones(2, 2)
    m.load_state_dict({**sd, "0.weight": w}, assign=True)
    assert isinstance(m[0].weight, ember.nn.Parameter) and m[0].weight.requires_grad
    assert m[0].weight._data is w._data
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like, got <class 'list'>"):
        m.load_state_dict([1])


def test_parameters_buffers_children_modules_register_parameter():
    t, e = net(torch.nn), net(ember.nn)
    assert [tuple(p.shape) for p in e.parameters()] == [tuple(p.shape) for p in t.parameters()]
    assert [tuple(b.shape) for b in e.buffers()] == [tuple(b.shape) for b in t.buffers()]
    assert [type(c).__name__ for c in e.children()] == [type(c).__name__ for c in t.children()]
    assert [type(c).__name__ for c in e.modules()] == [type(c).__name__ for c in t.modules()]
    assert len(list(e.parameters(recurse=False))) == 0
    for m, lib in ((e, ember), (t, torch)):
        m.register_parameter("extra", lib.nn.Parameter(lib.zeros(2)))
        m.register_parameter("nothing", None)
    assert "extra" in e.state_dict() and "nothing" not in e.state_dict()
    assert list(e.state_dict()) == list(t.state_dict())
    assert [k for k, _ in e.named_parameters()] == [k for k, _ in t.named_parameters()]
    with pytest.raises(TypeError, match=r"cannot assign 'ember.FloatTensor' object to parameter "
                                        r"'bad' \(ember.nn.Parameter or None required\)"):
        e.register_parameter("bad", ember.zeros(2))
    order = []
    e.apply(lambda m: order.append(type(m).__name__))
    torder = []
    t.apply(lambda m: torder.append(type(m).__name__))
    assert order == torder  # children first, the root last
