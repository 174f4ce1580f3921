"""A character-level LSTM language model on tiny-shakespeare, then a sample of generated text.

    python examples/char_lstm.py                  # trains ~10 minutes, val loss < 1.8 nats/char
    python examples/char_lstm.py --minutes 2 --sample-len 500

The text (1.1 MB, public domain) ships in examples/data. Only the imports point at ember.
"""
import argparse
import os
import time

import numpy as np

import ember as torch
import ember.nn as nn
import ember.nn.functional as F
import ember.optim as optim

HERE = os.path.dirname(os.path.abspath(__file__))


class CharLSTM(nn.Module):
    def __init__(self, vocab_size, embed=64, hidden=256, layers=1):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, idx, state=None):
        out, state = self.lstm(self.embed(idx), state)
        return self.head(out), state


def get_batch(data, batch_size, seq_len, rng):
    starts = rng.integers(0, len(data) - seq_len - 1, batch_size)
    x = np.stack([data[s:s + seq_len] for s in starts])
    y = np.stack([data[s + 1:s + seq_len + 1] for s in starts])
    return torch.from_numpy(x), torch.from_numpy(y)


def val_loss(model, data, batch_size, seq_len, batches):
    model.eval()
    rng = np.random.default_rng(1234)  # the same validation windows every time
    total = 0.0
    with torch.no_grad():
        for _ in range(batches):
            x, y = get_batch(data, batch_size, seq_len, rng)
            logits, _ = model(x)
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)).item()
    model.train()
    return total / batches


def sample(model, stoi, itos, prompt, length, temperature=0.8):
    model.eval()
    out = list(prompt)
    with torch.no_grad():
        logits, state = model(torch.tensor([[stoi[c] for c in prompt]]))
        for _ in range(length):
            probs = F.softmax(logits[0, -1] / temperature, dim=-1)
            nxt = torch.multinomial(probs, 1).item()
            out.append(itos[nxt])
            logits, state = model(torch.tensor([[nxt]]), state)
    model.train()
    return "".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(HERE, "data", "tinyshakespeare.txt"))
    parser.add_argument("--minutes", type=float, default=9.5, help="training time budget")
    parser.add_argument("--steps", type=int, default=100_000, help="stop after this many steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--eval-batches", type=int, default=10)
    parser.add_argument("--sample-len", type=int, default=400)
    args = parser.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    with open(args.data, encoding="utf-8") as f:
        text = f.read()
    itos = sorted(set(text))
    stoi = {c: i for i, c in enumerate(itos)}
    data = np.array([stoi[c] for c in text], dtype=np.int64)
    n = int(0.9 * len(data))
    train_data, val_data = data[:n], data[n:]
    print(f"{len(text):,} characters, vocabulary {len(itos)}; "
          f"{len(train_data):,} train / {len(val_data):,} validation")

    model = CharLSTM(len(itos), hidden=args.hidden)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    start, step, best = time.perf_counter(), 0, float("inf")
    running = None
    while step < args.steps and time.perf_counter() - start < 60 * args.minutes:
        x, y = get_batch(train_data, args.batch_size, args.seq_len, rng)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, len(itos)), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        step += 1
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % args.eval_every == 0:
            v = val_loss(model, val_data, args.batch_size, args.seq_len, args.eval_batches)
            best = min(best, v)
            print(f"step {step:5d}  train loss {running:.3f}  val loss {v:.3f}  "
                  f"({time.perf_counter() - start:.0f}s)")
    v = val_loss(model, val_data, args.batch_size, args.seq_len, args.eval_batches)
    print(f"char-LSTM on tiny-shakespeare: val loss {v:.3f} nats/char after {step} steps "
          f"in {time.perf_counter() - start:.0f}s")
    print("--- sample ---")
    print(sample(model, stoi, itos, "ROMEO:\n", args.sample_len))


if __name__ == "__main__":
    main()
