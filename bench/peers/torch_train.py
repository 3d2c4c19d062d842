"""PyTorch peer for bench/train.ts: trains the same architecture from the same initial weights
on the same batches, with the same AdamW settings and thread count; prints a JSON line with
per-step losses, tokens/s over the timed steps, final validation loss and peak RSS.

Usage: /usr/bin/python3 bench/peers/torch_train.py DIR THREADS WARMUP
DIR: config.json + model.safetensors (initial weights), batches.safetensors (ids, targets:
(steps, B, T) int32; val_ids, val_targets: (n, T)), bench.json (lr, betas, eps, weight decay,
decayed parameter names).
"""
import json, os, resource, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "test", "parity"))
import torch
import torch.nn.functional as F
from gpt_parity import GPT, read_st


def main():
    d, threads, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    c = json.load(open(f"{d}/config.json"))["model"]
    b = json.load(open(f"{d}/bench.json"))
    model = GPT(c, read_st(f"{d}/model.safetensors"))
    data = read_st(f"{d}/batches.safetensors")
    ids, tg = data["ids"].long(), data["targets"].long()
    decay = set(b["decay"])
    groups = [
        {"params": [p for k, p in model.p.items() if k.replace("__", ".") in decay], "weight_decay": b["weightDecay"]},
        {"params": [p for k, p in model.p.items() if k.replace("__", ".") not in decay], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=b["lr"], betas=(b["beta1"], b["beta2"]), eps=b["eps"])
    V = c["vocabSize"]
    losses, t0 = [], None
    for s in range(ids.shape[0]):
        if s == warmup:
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(ids[s]).reshape(-1, V), tg[s].reshape(-1))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    secs = time.perf_counter() - t0
    timed = ids.shape[0] - warmup
    with torch.no_grad():
        vi, vt = data["val_ids"].long(), data["val_targets"].long()
        bs = ids.shape[1]
        vl = [F.cross_entropy(model(vi[i:i + bs]).reshape(-1, V), vt[i:i + bs].reshape(-1)).item() for i in range(0, vi.shape[0], bs)]
    print(json.dumps({
        "losses": losses,
        "tokens_per_s": timed * ids.shape[1] * ids.shape[2] / secs,
        "val_loss": sum(vl) / len(vl),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
