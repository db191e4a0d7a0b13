#!/usr/bin/python3
"""An independent reference for the CPU engine: the same Llama-family forward pass written
with PyTorch, recomputing every sequence from its first token at each step (no KV cache),
from weights given either as the engine's export (name.json + name.bin, fp32) or as a
llama2.c checkpoint read here from its header.

    llama_ref.py (--export PREFIX | --llama2c FILE [--rope-theta T --norm-eps E])
                 --prompts JSON --steps N [--forced JSON] --out PREFIX

--prompts is a list of token-id lists; --forced, when given, the tokens to feed after the
prompt (one list per sequence, N each) instead of the greedy choice. Writes PREFIX.json
({"tokens": [[...], ...]}: the greedy token after each step) and PREFIX.bin: float32
logits (sequence, step 0..N, vocab), step 0 after the prompt.
"""
import argparse
import json
import struct

import numpy as np
import torch

torch.set_num_threads(1)
torch.set_grad_enabled(False)


def load_export(prefix):
    with open(prefix + ".json") as f:
        doc = json.load(f)
    flat = np.fromfile(prefix + ".bin", dtype="<f4")
    w = {}
    for t in doc["tensors"]:
        rows, cols = t["shape"]
        a = flat[t["offset"]: t["offset"] + rows * cols].reshape(rows, cols)
        w[t["name"]] = torch.from_numpy(a.copy())
    return doc["config"], w


def load_llama2c(path, rope_theta, norm_eps):
    """llama2.c's v0 format (run.c): 7 int32, then fp32 tensors in a fixed order."""
    with open(path, "rb") as f:
        head = struct.unpack("7i", f.read(28))
        data = np.frombuffer(f.read(), dtype="<f4")
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = head
    shared = vocab > 0
    vocab = abs(vocab)
    hd = dim // n_heads
    at = 0

    def take(*shape):
        nonlocal at
        n = int(np.prod(shape))
        a = data[at: at + n].reshape(shape)
        at += n
        return torch.from_numpy(a.copy())

    emb = take(vocab, dim)
    rms_att = take(n_layers, dim)
    wq = take(n_layers, n_heads * hd, dim)
    wk = take(n_layers, n_kv * hd, dim)
    wv = take(n_layers, n_kv * hd, dim)
    wo = take(n_layers, dim, n_heads * hd)
    rms_ffn = take(n_layers, dim)
    w1 = take(n_layers, hidden, dim)
    w2 = take(n_layers, dim, hidden)
    w3 = take(n_layers, hidden, dim)
    final = take(1, dim)
    at += seq_len * hd  # the RoPE tables: seq_len x hd/2, real and imaginary
    w = {"embed": emb, "final_norm": final}
    if not shared:
        w["classifier"] = take(vocab, dim)
    assert at == data.size, "size mismatch"
    for i in range(n_layers):
        p = "layers.%d." % i
        w[p + "attn_norm"] = rms_att[i][None]
        w[p + "ffn_norm"] = rms_ffn[i][None]
        w[p + "wq"], w[p + "wk"], w[p + "wv"], w[p + "wo"] = wq[i], wk[i], wv[i], wo[i]
        w[p + "w1"], w[p + "w2"], w[p + "w3"] = w1[i], w2[i], w3[i]
    cfg = {"d_model": dim, "n_layers": n_layers, "n_heads": n_heads, "n_kv_heads": n_kv,
           "head_dim": hd, "vocab": vocab, "tied_embeddings": shared,
           "rope_theta": rope_theta, "norm_eps": norm_eps, "n_experts": 0,
           "n_active_experts": 0, "first_dense_layers": 0, "window": 0,
           "local_layers": [False] * n_layers, "kv": "fp32", "bf16_matmul_inputs": False}
    return cfg, w


def rmsnorm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


class Model:
    def __init__(self, cfg, w):
        self.c, self.w = cfg, w
        hd = cfg["head_dim"]
        i = torch.arange(hd // 2, dtype=torch.float64)
        self.inv_freq = cfg["rope_theta"] ** (-2.0 * i / hd)

    def lin(self, x, name, bias=None):
        if self.c["bf16_matmul_inputs"]:
            x = x.to(torch.bfloat16).to(torch.float32)
        y = x @ self.w[name].T
        if bias is not None:
            y = y + bias
        return y

    def rope(self, v, pos):
        # v (T, heads, hd): the pairs (2i, 2i+1) rotated by pos * theta^(-2i/hd)
        ang = pos[:, None].to(torch.float64) * self.inv_freq[None, :]
        c, s = torch.cos(ang).float()[:, None, :], torch.sin(ang).float()[:, None, :]
        a, b = v[..., 0::2], v[..., 1::2]
        out = torch.empty_like(v)
        out[..., 0::2] = a * c - b * s
        out[..., 1::2] = a * s + b * c
        return out

    def ffn(self, p, xn, layer):
        c, w = self.c, self.w
        if c["n_experts"] and layer >= c["first_dense_layers"]:
            logits = self.lin(xn, p + "router", w.get(p + "router_bias", None))
            k = c["n_active_experts"]
            top, idx = torch.topk(logits, k, dim=-1)
            gate = torch.softmax(top, dim=-1)
            out = torch.zeros_like(xn)
            for t in range(xn.shape[0]):
                for j in range(k):
                    e = int(idx[t, j])
                    q = p + "experts.%d." % e
                    h = torch.nn.functional.silu(self.lin(xn[t:t + 1], q + "w1")) * \
                        self.lin(xn[t:t + 1], q + "w3")
                    out[t] += gate[t, j] * self.lin(h, q + "w2")[0]
            if p + "shared.w1" in w:
                h = torch.nn.functional.silu(self.lin(xn, p + "shared.w1")) * \
                    self.lin(xn, p + "shared.w3")
                out = out + self.lin(h, p + "shared.w2")
            return out
        b13 = w.get(p + "b13", None)
        ff = w[p + "w1"].shape[0]
        g = self.lin(xn, p + "w1", None if b13 is None else b13[0, :ff])
        u = self.lin(xn, p + "w3", None if b13 is None else b13[0, ff:])
        h = torch.nn.functional.silu(g) * u
        return self.lin(h, p + "w2", w[p + "b2"][0] if p + "b2" in w else None)

    def logits(self, tokens):
        """Logits of the last position of `tokens`, the whole sequence recomputed."""
        c, w = self.c, self.w
        T, hd = len(tokens), c["head_dim"]
        nh, nkv = c["n_heads"], c["n_kv_heads"]
        eps = c["norm_eps"]
        pos = torch.arange(T)
        x = w["embed"][torch.tensor(tokens)]
        for layer in range(c["n_layers"]):
            p = "layers.%d." % layer
            xn = rmsnorm(x, w[p + "attn_norm"][0], eps)
            bqkv = w.get(p + "bqkv", None)
            q_w, kv_w = nh * hd, nkv * hd
            q = self.lin(xn, p + "wq", None if bqkv is None else bqkv[0, :q_w])
            k = self.lin(xn, p + "wk", None if bqkv is None else bqkv[0, q_w:q_w + kv_w])
            v = self.lin(xn, p + "wv", None if bqkv is None else bqkv[0, q_w + kv_w:])
            q, k, v = q.view(T, nh, hd), k.view(T, nkv, hd), v.view(T, nkv, hd)
            if p + "q_norm" in w:
                q = rmsnorm(q, w[p + "q_norm"][0], eps)
                k = rmsnorm(k, w[p + "k_norm"][0], eps)
            q, k = self.rope(q, pos), self.rope(k, pos)
            if c["kv"] == "bf16":
                k = k.to(torch.bfloat16).float()
                v = v.to(torch.bfloat16).float()
            g = nh // nkv
            k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
            s = torch.einsum("qhd,khd->hqk", q, k) / (hd ** 0.5)
            mask = pos[None, :] > pos[:, None]
            if c["window"] and c["local_layers"][layer]:
                mask = mask | (pos[None, :] <= pos[:, None] - c["window"])
            s = s.masked_fill(mask[None], float("-inf"))
            a = torch.einsum("hqk,khd->qhd", torch.softmax(s, dim=-1), v).reshape(T, nh * hd)
            x = x + self.lin(a, p + "wo", w[p + "bo"][0] if p + "bo" in w else None)
            x = x + self.ffn(p, rmsnorm(x, w[p + "ffn_norm"][0], eps), layer)
        xn = rmsnorm(x[-1:], w["final_norm"][0], eps)
        return self.lin(xn, "classifier" if "classifier" in w else "embed")[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--export")
    ap.add_argument("--llama2c")
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--norm-eps", type=float, default=1e-5)
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--forced")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.export:
        cfg, w = load_export(a.export)
    else:
        cfg, w = load_llama2c(a.llama2c, a.rope_theta, a.norm_eps)
    m = Model(cfg, w)
    prompts = json.loads(a.prompts)
    forced = json.loads(a.forced) if a.forced else None
    tokens, logits = [], []
    for i, prompt in enumerate(prompts):
        seq, chosen = list(prompt), []
        for step in range(a.steps + 1):
            lg = m.logits(seq)
            logits.append(lg.numpy().astype("<f4"))
            chosen.append(int(torch.argmax(lg)))
            if step < a.steps:
                seq.append(forced[i][step] if forced else chosen[-1])
        tokens.append(chosen)
    np.stack(logits).tofile(a.out + ".bin")
    with open(a.out + ".json", "w") as f:
        json.dump({"tokens": tokens}, f)


if __name__ == "__main__":
    main()
