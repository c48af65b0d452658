"""An independent float64 numpy implementation of what the local embedder computes
(Hugging Face BertModel forward + sentence-transformers mean pooling + normalization), reading
the same files: the source of the reference vectors in tests/it/local.rs. PyTorch is not
installable here within reason (the PyPI wheel needs >1 GB of CUDA libraries), so this stands in
for `transformers`; tokenization uses the `tokenizers` package (the same Rust library).

usage: python3 reference.py MODEL_DIR TEXT...   prints the first 8 components of each vector
and the pairwise cosines. Needs numpy, safetensors and tokenizers.
"""
import json
import math
import os
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer


def load(model_dir):
    config = json.load(open(os.path.join(model_dir, "config.json")))
    weights = {k: v.astype(np.float64) for k, v in load_file(os.path.join(model_dir, "model.safetensors")).items()}
    max_len = 256
    st_path = os.path.join(model_dir, "sentence_bert_config.json")
    if os.path.exists(st_path):
        max_len = json.load(open(st_path)).get("max_seq_length", 256)
    tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(min(max_len, config["max_position_embeddings"]))
    return config, weights, tokenizer


def embed(config, W, tokenizer, texts):
    erf = np.vectorize(math.erf)
    pre = "" if "embeddings.word_embeddings.weight" in W else "bert."
    out = []
    for text in texts:  # one at a time: no padding at all in the reference
        ids = np.array(tokenizer.encode(text).ids)
        T = len(ids)

        def ln(x, p):
            mu = x.mean(-1, keepdims=True)
            var = ((x - mu) ** 2).mean(-1, keepdims=True)
            return (x - mu) / np.sqrt(var + config["layer_norm_eps"]) * W[p + ".weight"] + W[p + ".bias"]

        def lin(x, p):
            return x @ W[p + ".weight"].T + W[p + ".bias"]

        x = (W[pre + "embeddings.word_embeddings.weight"][ids]
             + W[pre + "embeddings.position_embeddings.weight"][:T]
             + W[pre + "embeddings.token_type_embeddings.weight"][0])
        x = ln(x, pre + "embeddings.LayerNorm")
        H = config["num_attention_heads"]
        dh = config["hidden_size"] // H
        for l in range(config["num_hidden_layers"]):
            p = f"{pre}encoder.layer.{l}."
            q, k, v = (lin(x, p + "attention.self." + n).reshape(T, H, dh).transpose(1, 0, 2) for n in ("query", "key", "value"))
            s = q @ k.transpose(0, 2, 1) / math.sqrt(dh)
            a = np.exp(s - s.max(-1, keepdims=True))
            a /= a.sum(-1, keepdims=True)
            c = (a @ v).transpose(1, 0, 2).reshape(T, H * dh)
            x = ln(lin(c, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            h = lin(x, p + "intermediate.dense")
            h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
            x = ln(lin(h, p + "output.dense") + x, p + "output.LayerNorm")
        pooled = x.mean(0)
        out.append(pooled / max(np.linalg.norm(pooled), 1e-12))
    return np.array(out)


if __name__ == "__main__":
    config, W, tokenizer = load(sys.argv[1])
    texts = sys.argv[2:]
    E = embed(config, W, tokenizer, texts)
    for text, e in zip(texts, E):
        print(f"{text[:40]!r:44} tokens={len(tokenizer.encode(text).ids):3} [" + ", ".join(f"{v:.6f}" for v in e[:8]) + "]")
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            print(f"cos({i},{j}) = {E[i] @ E[j]:.6f}")
