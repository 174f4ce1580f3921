"""DataLoader worker processes: order, seeding, iterable splitting, and failure behaviour."""

import faulthandler
import gc
import os
import random
import signal
import time

import numpy as np
import pytest
import torch
import torch.utils.data as tud

import ember
from ember.utils.data import DataLoader, IterableDataset, TensorDataset, get_worker_info

pytestmark = [pytest.mark.skipif(not hasattr(os, "fork"), reason="worker tests use fork"),
              pytest.mark.filterwarnings("ignore:This DataLoader will create")]


class Items:
    """Sample i is i (as an int and an array); optional failure hooks at chosen indices."""

    def __init__(self, n, hook=None):
        self.n, self.hook = n, hook

    def __getitem__(self, i):
        if self.hook is not None:
            self.hook(i)
        return np.full(3, i, np.float32), i

    def __len__(self):
        return self.n


class WhoAmI:
    def __len__(self):
        return 8

    def __getitem__(self, i):
        info = get_worker_info()
        return {"pid": os.getpid(), "id": info.id, "seed": info.seed, "nw": info.num_workers,
                "ember": ember.rand(1).item(), "numpy": np.random.rand(), "py": random.random()}


def make_split_stream(info_fn, n):
    class Stream(IterableDataset if info_fn is get_worker_info else tud.IterableDataset):
        def __iter__(self):
            info = info_fn()
            start, step = (0, 1) if info is None else (info.id, info.num_workers)
            return iter(range(start, n, step))

    return Stream()


def gone(pids, within=5.0):
    """True once every pid has exited and been reaped."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                os.kill(pid, 0)
                alive.append(pid)
            except ProcessLookupError:
                pass
        if not alive:
            return True
        time.sleep(0.05)
    return False


def flat(loader):
    return [(x.tolist(), y.tolist()) for x, y in loader]


@pytest.mark.parametrize("workers,bs,prefetch", [(1, 4, 2), (2, 3, 2), (3, 1, 1), (2, 5, 4)])
def test_order_equals_single_process(workers, bs, prefetch):
    ds = Items(23)
    ref = flat(DataLoader(ds, batch_size=bs))
    got = flat(DataLoader(ds, batch_size=bs, num_workers=workers, prefetch_factor=prefetch))
    assert got == ref


def test_shuffled_order_repeats_and_matches_single_process_with_same_seed():
    ds = Items(30)
    ember.manual_seed(3)
    ref = flat(DataLoader(ds, batch_size=4, shuffle=True))
    ember.manual_seed(3)
    got = flat(DataLoader(ds, batch_size=4, shuffle=True, num_workers=2))
    assert got == ref


def test_batches_arrive_as_writable_ember_tensors():
    x, y = next(iter(DataLoader(Items(4), batch_size=4, num_workers=1)))
    assert isinstance(x, ember.Tensor) and x.dtype == ember.float32 and y.dtype == ember.int64
    x.add_(1)  # received buffers are ours to modify
    assert x[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_worker_info_in_workers_and_none_in_main():
    assert get_worker_info() is None
    out = [d for d in DataLoader(WhoAmI(), batch_size=None, num_workers=2)]
    assert {d["id"] for d in out} == {0, 1} and {d["nw"] for d in out} == {2}
    assert len({d["pid"] for d in out}) == 2 and os.getpid() not in {d["pid"] for d in out}
    assert get_worker_info() is None


def test_worker_seeds_differ_per_worker_and_repeat_per_manual_seed():
    def run(seed):
        ember.manual_seed(seed)
        return [d for d in DataLoader(WhoAmI(), batch_size=None, num_workers=2)]

    a, b, c = run(0), run(0), run(1)
    key = [(d["id"], d["seed"], d["ember"], d["numpy"], d["py"]) for d in a]
    assert key == [(d["id"], d["seed"], d["ember"], d["numpy"], d["py"]) for d in b]
    assert [d["ember"] for d in a] != [d["ember"] for d in c]
    w0 = [d for d in a if d["id"] == 0][0]
    w1 = [d for d in a if d["id"] == 1][0]
    assert w1["seed"] == w0["seed"] + 1  # base_seed + worker_id
    for k in ("ember", "numpy", "py"):
        assert w0[k] != w1[k]


def test_generator_fixes_the_base_seed():
    def seeds(g):
        return sorted({d["seed"] for d in DataLoader(WhoAmI(), batch_size=None, num_workers=2,
                                                     generator=g)})

    assert seeds(ember.Generator().manual_seed(9)) == seeds(ember.Generator().manual_seed(9))


@pytest.mark.parametrize("workers,bs,drop", [(2, 3, False), (2, 3, True), (3, 2, False), (1, None, False)])
def test_iterable_dataset_split_by_worker_info_matches_torch(workers, bs, drop):
    e = DataLoader(make_split_stream(get_worker_info, 17), batch_size=bs, drop_last=drop,
                   num_workers=workers)
    t = tud.DataLoader(make_split_stream(tud.get_worker_info, 17), batch_size=bs,
                       drop_last=drop, num_workers=workers)
    def lists(loader):
        return [b if isinstance(b, int) else b.tolist() for b in loader]

    assert lists(e) == lists(t)


def test_worker_init_fn_runs_in_each_worker():
    def init(worker_id):
        os.environ["EMBER_TEST_WORKER"] = f"w{worker_id}"

    class Env:
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return os.environ.get("EMBER_TEST_WORKER", "")

    got = list(DataLoader(Env(), batch_size=None, num_workers=2, worker_init_fn=init))
    assert got == ["w0", "w1", "w0", "w1"] and "EMBER_TEST_WORKER" not in os.environ


def fail_at_1(i):
    if i == 1:
        raise ValueError("bad sample 1")


def test_worker_exception_reraises_with_worker_id_and_traceback():
    loader = DataLoader(Items(4, fail_at_1), batch_size=1, num_workers=2)
    with pytest.raises(ValueError) as e:
        list(loader)
    msg = str(e.value)
    assert msg.startswith("Caught ValueError in DataLoader worker process 1.\n"
                          "Original Traceback (most recent call last):")
    assert "bad sample 1" in msg and "in fail_at_1" in msg


class NeedsTwoArgs(Exception):
    def __init__(self, a, b):
        super().__init__(a, b)


def test_worker_key_error_and_untyped_exceptions():
    def key_error(i):
        raise KeyError("missing")

    def odd_error(i):
        raise NeedsTwoArgs(1, 2)

    class Local(Exception):  # pickle cannot name it: still reported, as RuntimeError
        pass

    def local_error(i):
        raise Local("x")

    with pytest.raises(KeyError, match="Caught KeyError in DataLoader worker process 0"):
        next(iter(DataLoader(Items(2, key_error), num_workers=1)))
    for hook, name in ((odd_error, "NeedsTwoArgs"), (local_error, "Local")):
        with pytest.raises(RuntimeError, match=f"Caught {name} in DataLoader worker process 0"):
            next(iter(DataLoader(Items(2, hook), num_workers=1)))


def test_unpicklable_batch_is_reported():
    with pytest.raises((AttributeError, TypeError, RuntimeError), match="while sending a batch"):
        next(iter(DataLoader(Items(2), num_workers=1, collate_fn=lambda b: (lambda: b))))


def test_worker_init_fn_exception_reraises():
    def init(worker_id):
        raise OSError("no such resource")

    with pytest.raises(OSError, match="Caught OSError in DataLoader worker process 0"):
        next(iter(DataLoader(Items(2), num_workers=1, worker_init_fn=init)))


@pytest.mark.parametrize("sig,name", [(signal.SIGKILL, "Killed"), (signal.SIGSEGV, "Segmentation fault")])
def test_killed_worker_raises_promptly(sig, name):
    def die(i):
        if i == 2:
            faulthandler.disable()  # pytest's would print a traceback for the segfault
            os.kill(os.getpid(), sig)

    loader = DataLoader(Items(6, die), batch_size=1, num_workers=2)
    t = time.monotonic()
    with pytest.raises(RuntimeError, match=rf"DataLoader worker \(pid \d+\) is killed by signal: {name}"):
        list(loader)
    assert time.monotonic() - t < 4.0


def test_worker_that_exits_raises():
    def leave(i):
        if i == 0:
            os._exit(3)

    with pytest.raises(RuntimeError, match="exited unexpectedly with exit code 3"):
        list(DataLoader(Items(2, leave), num_workers=1))


def test_timeout_is_honoured():
    def slow(i):
        if i == 1:
            time.sleep(0.8)

    it = iter(DataLoader(Items(3, slow), batch_size=1, num_workers=1, timeout=0.2))
    next(it)
    with pytest.raises(RuntimeError, match=r"DataLoader timed out after 0.2 seconds"):
        next(it)
    pids = [w.pid for w in it._workers]
    del it
    gc.collect()
    assert gone(pids)


def test_breaking_early_and_deleting_shut_workers_down():
    loader = DataLoader(WhoAmI(), batch_size=None, num_workers=2)
    pids = set()
    for d in loader:
        pids.add(d["pid"])
        if len(pids) == 2:
            break
    gc.collect()
    assert gone(pids)
    it = iter(loader)
    pids = {next(it)["pid"], next(it)["pid"]}
    del it
    gc.collect()
    assert gone(pids)


def test_workers_exit_at_the_end_of_an_epoch():
    loader = DataLoader(WhoAmI(), batch_size=None, num_workers=2)
    pids = {d["pid"] for d in loader}
    assert gone(pids)


def test_persistent_workers_live_across_epochs_and_die_with_the_loader():
    loader = DataLoader(WhoAmI(), batch_size=None, num_workers=2, persistent_workers=True)
    first = [d["pid"] for d in loader]
    it = iter(loader)
    next(it)  # abandon an epoch half-way: the next one must still be complete and ordered
    second = [d["pid"] for d in loader]
    assert first == second and not gone(set(first), within=0.2)
    del loader, it
    gc.collect()
    assert gone(set(first))


def test_persistent_workers_with_iterable_dataset():
    loader = DataLoader(make_split_stream(get_worker_info, 9), batch_size=2, num_workers=2,
                        persistent_workers=True)
    a = [b.tolist() for b in loader]
    assert a == [b.tolist() for b in loader]
    assert sorted(sum(a, [])) == list(range(9))


def test_spawn_context():
    ds = TensorDataset(ember.arange(6.0), ember.arange(6))
    loader = DataLoader(ds, batch_size=4, num_workers=1, multiprocessing_context="spawn")
    assert [x.tolist() for x, _ in loader] == [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0]]


def test_spawn_worker_that_dies_starting_raises_instead_of_hanging(tmp_path):
    """A script without the ``if __name__ == "__main__":`` guard: each spawned worker runs it
    again and dies before reading its dataset. With a dataset larger than a pipe holds (400 KB),
    the main process had blocked for ever handing it over; it now raises PyTorch's error."""
    import subprocess
    import sys

    script = tmp_path / "no_main_guard.py"
    script.write_text(
        "import ember\n"
        "from ember.utils.data import DataLoader, TensorDataset\n"
        "ds = TensorDataset(ember.zeros(100_000))\n"
        "for _ in DataLoader(ds, batch_size=1000, num_workers=1,"
        " multiprocessing_context='spawn'):\n"
        "    pass\n")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, PYTHONPATH=root))
    assert out.returncode != 0
    assert "DataLoader worker (pid" in out.stderr and "exited unexpectedly" in out.stderr


def test_spawn_with_an_unpicklable_collate_fn_raises_and_its_workers_exit_quietly(capfd):
    """The pickling error is raised in the main process; the workers it had started, still
    waiting for their dataset, are shut down without a traceback of their own."""
    ds = TensorDataset(ember.arange(6.0))
    with pytest.raises(Exception, match="pickle"):
        list(DataLoader(ds, num_workers=2, multiprocessing_context="spawn",
                        collate_fn=lambda batch: batch))
    gc.collect()
    err = capfd.readouterr().err
    assert "Traceback" not in err, err


def test_torch_oracle_agrees_on_order():
    ds = Items(11)
    e = flat(DataLoader(ds, batch_size=3, num_workers=2))
    t = [(x.tolist(), y.tolist()) for x, y in tud.DataLoader(ds, batch_size=3, num_workers=2)]
    assert e == t and torch.is_tensor(torch.zeros(1))


def test_pipe_transport_where_there_is_no_memfd(monkeypatch):
    from ember.utils.data import _shm

    monkeypatch.setattr(_shm, "available", lambda: False)
    ds = Items(13)
    assert flat(DataLoader(ds, batch_size=4, num_workers=2)) == flat(DataLoader(ds, batch_size=4))

    def die(i):
        if i == 1:
            os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(RuntimeError, match="is killed by signal: Killed"):
        list(DataLoader(Items(3, die), num_workers=1))


@pytest.mark.parametrize("n", [1, 4, 40])  # inline messages and a memfd past INLINE_BYTES
def test_small_and_large_batches_arrive_whole_aligned_and_writable(n):
    from ember.utils.data import _shm

    images = ember.randn(80, 3, 32, 32)  # 12 KiB each: 40 of them do not fit inline
    ds = TensorDataset(images, ember.arange(80), ember.arange(80).double())
    assert 40 * 3 * 32 * 32 * 4 > _shm.INLINE_BYTES > 4 * 3 * 32 * 32 * 4 + 1024
    got = list(DataLoader(ds, batch_size=n, num_workers=2))
    assert len(got) == 80 // n
    for i, (x, y, d) in enumerate(got):
        np.testing.assert_array_equal(x.numpy(), images.numpy()[i * n:(i + 1) * n])
        np.testing.assert_array_equal(y.numpy(), np.arange(i * n, (i + 1) * n))
        np.testing.assert_array_equal(d.numpy(), np.arange(i * n, (i + 1) * n))
        for t in (x, y, d):
            assert t.numpy().flags.aligned and t.numpy().flags.writeable
        x.add_(1)
