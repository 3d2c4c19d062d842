"""PyTorch reference for Lumen's GPT: the same architecture written independently in PyTorch.

Usage: /usr/bin/python3 test/parity/gpt_parity.py DIR THREADS
DIR holds config.json + model.safetensors (written by Lumen), inputs.safetensors (ids, targets,
int32; optional image pixels) and parity.json (optimizer settings, decayed parameter names).
Writes DIR/torch_out.safetensors: logits, loss, grad.<name> for every parameter, and
after.<name> for every parameter after `steps` AdamW steps on the same batch.
PyTorch 1.13 has no scaled_dot_product_attention, so attention is written out.
"""
import json, math, struct, sys
import numpy as np
import torch
import torch.nn.functional as F

DT = {"F32": np.float32, "I32": np.int32, "F64": np.float64, "U8": np.uint8}


def read_st(path):
    with open(path, "rb") as f:
        buf = f.read()
    n = struct.unpack("<Q", buf[:8])[0]
    header = json.loads(buf[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        arr = np.frombuffer(buf[8 + n + b:8 + n + end], dtype=DT[e["dtype"]]).reshape(e["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def write_st(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        a = t.detach().contiguous().numpy().astype(np.float32)
        raw = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


class GPT(torch.nn.Module):
    def __init__(self, c, weights):
        super().__init__()
        self.c = c
        self.p = torch.nn.ParameterDict({k.replace(".", "__"): torch.nn.Parameter(v.float().clone()) for k, v in weights.items()})

    def w(self, name):
        return self.p[name.replace(".", "__")] if name.replace(".", "__") in self.p else None

    def linear(self, x, name):
        y = x @ self.w(name + ".weight").t()
        b = self.w(name + ".bias")
        return y + b if b is not None else y

    def norm(self, x, name):
        c = self.c
        if c["norm"] == "layernorm":
            return F.layer_norm(x, (c["width"],), self.w(name + ".weight"), self.w(name + ".bias"), c["normEps"])
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + c["normEps"]) * self.w(name + ".weight")

    def rope(self, x, pos):  # x (B, T, H, D), rotate-half pairs (d, d + D/2)
        D = x.shape[-1]
        half = D // 2
        inv = self.c["ropeBase"] ** (-2 * torch.arange(half, dtype=torch.float64) / D)
        ang = (pos.double()[..., None] * inv).float()  # (B, T, half)
        cos, sin = ang.cos()[:, :, None, :], ang.sin()[:, :, None, :]
        a, b = x[..., :half], x[..., half:]
        return torch.cat([a * cos - b * sin, b * cos + a * sin], -1)

    def attn_scale(self):
        c = self.c
        D = c["width"] // c["heads"]
        if c["parametrization"] != "mup":
            return 1 / math.sqrt(D)
        return math.sqrt(c["baseWidth"] / c["heads"]) / D

    def qkv(self, h, p, pos):  # h (B, T, C) -> q (B, T, H, D), k, v (B, T, Hkv, D), rotated when rope
        c = self.c
        B, T = h.shape[0], h.shape[1]
        H, Hkv, D = c["heads"], c["kvHeads"], c["width"] // c["heads"]
        q = self.linear(h, p + ".self_attn.q_proj").view(B, T, H, D)
        k = self.linear(h, p + ".self_attn.k_proj").view(B, T, Hkv, D)
        v = self.linear(h, p + ".self_attn.v_proj").view(B, T, Hkv, D)
        if c["positions"] == "rope":
            q, k = self.rope(q, pos), self.rope(k, pos)
        return q, k, v

    def mlp_residual(self, x, p):  # x + MLP(norm(x))
        h2 = self.norm(x, p + ".post_attention_layernorm")
        if self.c["activation"] == "swiglu":
            m = F.silu(self.linear(h2, p + ".mlp.gate_proj")) * self.linear(h2, p + ".mlp.up_proj")
        else:
            m = F.gelu(self.linear(h2, p + ".mlp.up_proj"), approximate="tanh")
        return x + self.linear(m, p + ".mlp.down_proj")

    def head(self, x):  # final hidden (.., C) -> logits (.., V)
        head = self.w("lm_head.weight")
        if head is None:
            head = self.w("model.embed_tokens.weight")
        logits = x @ head.t()
        if self.c["parametrization"] == "mup":
            logits = logits * (self.c["baseWidth"] / self.c["width"])
        return logits

    def forward(self, ids, splice=None):
        c = self.c
        B, T = ids.shape
        H, Hkv, D = c["heads"], c["kvHeads"], c["width"] // c["heads"]
        pos = torch.arange(T)[None, :].expand(B, T)
        x = self.w("model.embed_tokens.weight")[ids.long()]
        if splice is not None:
            idx, vals = splice
            x = x.reshape(B * T, -1).clone()
            x[idx.long()] = vals
            x = x.reshape(B, T, -1)
        if c["positions"] == "learned":
            x = x + self.w("model.embed_positions.weight")[pos]
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        for l in range(c["layers"]):
            p = f"model.layers.{l}"
            q, k, v = self.qkv(self.norm(x, p + ".input_layernorm"), p, pos)
            rep = H // Hkv
            k = k.repeat_interleave(rep, dim=2)
            v = v.repeat_interleave(rep, dim=2)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, H, T, D)
            s = (q @ k.transpose(-1, -2)) * self.attn_scale()
            s = s.masked_fill(causal, float("-inf"))
            a = torch.softmax(s, -1) @ v
            a = a.transpose(1, 2).reshape(B, T, c["width"])
            x = x + self.linear(a, p + ".self_attn.o_proj")
            x = self.mlp_residual(x, p)
        logits = self.head(self.norm(x, "model.norm"))
        return logits


def main():
    d, threads = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(threads)
    c = json.load(open(f"{d}/config.json"))["model"]
    par = json.load(open(f"{d}/parity.json"))
    model = GPT(c, read_st(f"{d}/model.safetensors"))
    inp = read_st(f"{d}/inputs.safetensors")
    ids, tg = inp["ids"], inp["targets"]
    splice = (inp["splice_index"], inp["splice_values"]) if "splice_index" in inp else None
    logits = model(ids, splice)
    loss = F.cross_entropy(logits.reshape(-1, c["vocabSize"]), tg.reshape(-1).long(), ignore_index=-100)
    loss.backward()
    out = {"logits": logits, "loss": loss.reshape(1)}
    for k, p in model.p.items():
        out["grad." + k.replace("__", ".")] = p.grad.detach().clone()
    # one param group per (weight decay, learning-rate scale), as Lumen's AdamW applies them
    groups = {}
    for k, p in model.p.items():
        name = k.replace("__", ".")
        wd = par["weightDecay"] if name in par["decay"] else 0.0
        scale = par["lrScale"].get(name, 1.0)
        groups.setdefault((wd, scale), []).append(p)
    opt = torch.optim.AdamW([{"params": ps, "weight_decay": wd, "lr": par["lr"] * sc} for (wd, sc), ps in groups.items()],
                            lr=par["lr"], betas=(par["beta1"], par["beta2"]), eps=par["eps"])
    for _ in range(par["steps"]):
        opt.zero_grad()
        lg = model(ids, splice)
        F.cross_entropy(lg.reshape(-1, c["vocabSize"]), tg.reshape(-1).long(), ignore_index=-100).backward()
        opt.step()
    for k, p in model.p.items():
        out["after." + k.replace("__", ".")] = p
    write_st(f"{d}/torch_out.safetensors", out)


if __name__ == "__main__":
    main()
