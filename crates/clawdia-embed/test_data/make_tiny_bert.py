"""Writes test_data/tiny-bert: a 2-layer, 8-dimensional BERT with random weights and a small
WordPiece tokenizer, in the same Hugging Face layout as all-MiniLM-L6-v2. The Rust tests load
it to exercise the whole local-embedder path without the real weights; its expected vectors
come from reference.py. Needs numpy, safetensors and tokenizers (pip); deterministic (seeded).

usage: python3 make_tiny_bert.py [OUT_DIR]
"""
import json
import os
import sys

import numpy as np
from safetensors.numpy import save_file
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "tiny-bert")
os.makedirs(out, exist_ok=True)

specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
words = ["a", "man", "is", "eating", "food", "the", "girl", "baby", "bread", "piece", "of", "."]
letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
vocab_list = specials + words + [l for l in letters if l not in words] + ["##" + l for l in letters]
vocab = {token: index for index, token in enumerate(vocab_list)}

tokenizer = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
tokenizer.post_processor = processors.TemplateProcessing(
    single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
)
tokenizer.decoder = decoders.WordPiece()
# Like the real tokenizer.json: fixed padding and 128-token truncation, which the loader replaces.
tokenizer.enable_padding(pad_id=0, pad_token="[PAD]", length=128)
tokenizer.enable_truncation(128)
tokenizer.save(os.path.join(out, "tokenizer.json"))

hidden, layers, heads, intermediate, positions = 8, 2, 2, 16, 64
config = {
    "architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1, "hidden_size": hidden, "initializer_range": 0.02,
    "intermediate_size": intermediate, "layer_norm_eps": 1e-12, "max_position_embeddings": positions,
    "model_type": "bert", "num_attention_heads": heads, "num_hidden_layers": layers, "pad_token_id": 0,
    "position_embedding_type": "absolute", "type_vocab_size": 2, "vocab_size": len(vocab_list),
}
with open(os.path.join(out, "config.json"), "w") as f:
    json.dump(config, f, indent=2)
with open(os.path.join(out, "sentence_bert_config.json"), "w") as f:
    json.dump({"max_seq_length": 16, "do_lower_case": False}, f)

rng = np.random.default_rng(20240601)
def normal(*shape, scale=0.5):
    return (rng.standard_normal(shape) * scale).astype(np.float32)

tensors = {
    "embeddings.word_embeddings.weight": normal(len(vocab_list), hidden),
    "embeddings.position_embeddings.weight": normal(positions, hidden),
    "embeddings.token_type_embeddings.weight": normal(2, hidden),
    "embeddings.LayerNorm.weight": 1 + normal(hidden, scale=0.1),
    "embeddings.LayerNorm.bias": normal(hidden, scale=0.1),
}
for l in range(layers):
    p = f"encoder.layer.{l}."
    for name in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"]:
        tensors[p + name + ".weight"] = normal(hidden, hidden)
        tensors[p + name + ".bias"] = normal(hidden, scale=0.1)
    tensors[p + "intermediate.dense.weight"] = normal(intermediate, hidden)
    tensors[p + "intermediate.dense.bias"] = normal(intermediate, scale=0.1)
    tensors[p + "output.dense.weight"] = normal(hidden, intermediate)
    tensors[p + "output.dense.bias"] = normal(hidden, scale=0.1)
    for norm in ["attention.output.LayerNorm", "output.LayerNorm"]:
        tensors[p + norm + ".weight"] = 1 + normal(hidden, scale=0.1)
        tensors[p + norm + ".bias"] = normal(hidden, scale=0.1)
save_file(tensors, os.path.join(out, "model.safetensors"))
print(f"wrote {out}")
