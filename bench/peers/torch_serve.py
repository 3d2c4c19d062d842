"""PyTorch peer for bench/serve.ts: greedy decoding with a KV cache of the same weights.

Usage: /usr/bin/python3 bench/peers/torch_serve.py --model DIR --tokens N --batch B --threads T [--reps R]
Prints {"tokens_per_s": x}: generated tokens per second over all B sequences (median of R runs),
each run decoding N tokens after a one-token prompt, no sampling overhead beyond argmax.
"""
import argparse, json, math, os, statistics, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "test", "parity"))
import torch
import torch.nn.functional as F
from gpt_parity import GPT, read_st


@torch.no_grad()
def decode(model, c, batch, tokens):
    H, Hkv, D = c["heads"], c["kvHeads"], c["width"] // c["heads"]
    L = c["layers"]
    kc = [torch.zeros(batch, Hkv, tokens + 1, D) for _ in range(L)]
    vc = [torch.zeros(batch, Hkv, tokens + 1, D) for _ in range(L)]
    tok = torch.zeros(batch, dtype=torch.long)
    for t in range(tokens):
        pos = torch.full((batch, 1), t, dtype=torch.long)
        x = model.w("model.embed_tokens.weight")[tok][:, None, :]
        if c["positions"] == "learned":
            x = x + model.w("model.embed_positions.weight")[pos]
        for l in range(L):
            p = f"model.layers.{l}"
            q, k, v = model.qkv(model.norm(x, p + ".input_layernorm"), p, pos)
            kc[l][:, :, t] = k[:, 0]
            vc[l][:, :, t] = v[:, 0]
            K = kc[l][:, :, : t + 1].repeat_interleave(H // Hkv, dim=1)
            V = vc[l][:, :, : t + 1].repeat_interleave(H // Hkv, dim=1)
            s = (q.transpose(1, 2) @ K.transpose(-1, -2)) * model.attn_scale()
            a = (torch.softmax(s, -1) @ V).transpose(1, 2).reshape(batch, 1, c["width"])
            x = x + model.linear(a, p + ".self_attn.o_proj")
            x = model.mlp_residual(x, p)
        tok = model.head(model.norm(x, "model.norm")[:, 0]).argmax(-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    c = json.load(open(os.path.join(a.model, "config.json")))["model"]
    model = GPT(c, read_st(os.path.join(a.model, "model.safetensors")))
    tokens = min(a.tokens, c["contextLength"] - 1)
    decode(model, c, a.batch, min(tokens, 8))  # warm-up
    rates = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        decode(model, c, a.batch, tokens)
        rates.append(a.batch * tokens / (time.perf_counter() - t0))
    print(json.dumps({"tokens_per_s": statistics.median(rates)}))


if __name__ == "__main__":
    main()
