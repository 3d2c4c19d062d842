"""PyTorch reference for Lumen's vision path: ViT encoder + MLP projector spliced into the GPT
of gpt_parity.py, written independently (patches come from F.unfold here, a reshape/permute in
Lumen).

Usage: /usr/bin/python3 test/parity/vit_parity.py DIR THREADS
DIR holds config.json ({model, vision}) + model.safetensors (written by Lumen) and
inputs.safetensors: ids, targets (B, T) int32, pixels (N, 3, S, S), image_positions (N*M,) int32.
Writes DIR/torch_out.safetensors: logits, loss, image_embeds, grad.<name> for every parameter.
"""
import json, math, os, sys
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt_parity import GPT, read_st, write_st  # noqa: E402


def vision_embeds(model, v, pixels):
    """pixels (N, 3, S, S) -> projected patch embeddings (N, M, C)."""
    w = model.w
    W, P, H = v["width"], v["patchSize"], v["heads"]
    D = W // H
    patches = F.unfold(pixels, kernel_size=P, stride=P).transpose(1, 2)  # (N, M, 3P²), each (channel, row, col), raster order
    if v.get("patchNorm", "patch") == "channel":  # each channel of each patch normalised on its own, then the affine
        n_, m_ = patches.shape[0], patches.shape[1]
        patches = F.layer_norm(patches.reshape(n_, m_, 3, P * P), (P * P,), None, None, 1e-5).reshape(n_, m_, 3 * P * P)
        patches = patches * w("vision.patch_norm.weight") + w("vision.patch_norm.bias")
    else:
        patches = F.layer_norm(patches, (3 * P * P,), w("vision.patch_norm.weight"), w("vision.patch_norm.bias"), 1e-5)
    x = patches @ w("vision.patch_embed.weight").t() + w("vision.patch_embed.bias")
    x = x + w("vision.position_embedding.weight")
    if v.get("patchStats"):  # per-patch, per-channel min and max of the input pixels
        per = F.unfold(pixels, kernel_size=P, stride=P).transpose(1, 2).reshape(x.shape[0], x.shape[1], 3, P * P)
        stats = torch.cat([per.amin(-1), per.amax(-1)], -1)  # (N, M, 6): min R, G, B, max R, G, B
        x = x + stats @ w("vision.patch_stats.weight").t()
    N, M, _ = x.shape
    lin = lambda t, name: t @ w(name + ".weight").t() + w(name + ".bias")
    ln = lambda t, name: F.layer_norm(t, (W,), w(name + ".weight"), w(name + ".bias"), 1e-5)
    for l in range(v["layers"]):
        p = f"vision.layers.{l}"
        h = ln(x, p + ".norm1")
        q, k, vv = (lin(h, f"{p}.attn.{n}_proj").view(N, M, H, D).transpose(1, 2) for n in ("q", "k", "v"))
        a = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(D), -1) @ vv  # no mask: bidirectional
        x = x + lin(a.transpose(1, 2).reshape(N, M, W), p + ".attn.o_proj")
        x = x + lin(F.gelu(lin(ln(x, p + ".norm2"), p + ".mlp.fc1"), approximate="tanh"), p + ".mlp.fc2")
    x = ln(x, "vision.norm")
    return lin(F.gelu(lin(x, "projector.fc1"), approximate="tanh"), "projector.fc2")


def main():
    d, threads = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(threads)
    cfg = json.load(open(f"{d}/config.json"))
    c, v = cfg["model"], cfg["vision"]
    model = GPT(c, read_st(f"{d}/model.safetensors"))
    inp = read_st(f"{d}/inputs.safetensors")
    emb = vision_embeds(model, v, inp["pixels"])
    N, M, C = emb.shape
    logits = model(inp["ids"], (inp["image_positions"], emb.reshape(N * M, C)))
    loss = F.cross_entropy(logits.reshape(-1, c["vocabSize"]), inp["targets"].reshape(-1).long(), ignore_index=-100)
    loss.backward()
    out = {"logits": logits, "loss": loss.reshape(1), "image_embeds": emb}
    for k, p in model.p.items():
        out["grad." + k.replace("__", ".")] = p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
    write_st(f"{d}/torch_out.safetensors", out)


if __name__ == "__main__":
    main()
