"""Multi-head attention (Vaswani et al., 2017, "Attention Is All You Need", section 3.2).

The 2017 milestone introduced it; GPT (2018/2019) and BERT (2018) stack it too. It lives here, apart from
any milestone, so that a change to the translation milestones' files leaves GPT's and BERT's code
versions (and so their runs) alone."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel


def _backends(device: torch.device) -> list[SDPBackend]:
    """With a padding mask, the fused 'flash' kernel on a CPU made a training step 1.6x slower than the
    plain one for these short sentences and small heads (d_k = 32; benchmarks/nmt_speed.py), so CPUs
    use the math kernel there. (Attention that is only causal takes the fused kernels: ``attend``.)"""
    return [SDPBackend.MATH] if device.type == "cpu" else _FUSED


_FUSED = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION,
          SDPBackend.MATH]


class MultiHeadAttention(nn.Module):
    """MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O, head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)
    with Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V (section 3.2). The h heads' projections are
    one matrix each for Q, K and V; the attention itself runs in ``F.scaled_dot_product_attention``,
    which fuses the softmax with the two products."""

    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.heads, self.d_k = heads, d_model // heads
        self.w_q, self.w_k, self.w_v = (nn.Linear(d_model, d_model) for _ in range(3))
        self.w_o = nn.Linear(d_model, d_model)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, d_model) -> (B, h, L, d_k)."""
        return x.unflatten(-1, (self.heads, self.d_k)).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                mask: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
        """query (B, Lq, d), key/value (B, Lk, d); ``mask`` (B, Lk) or (B, Lq, Lk), True where attending
        is allowed; ``causal`` forbids attending to later positions. Returns (B, Lq, d)."""
        q, k, v = self.split(self.w_q(query)), self.split(self.w_k(key)), self.split(self.w_v(value))
        return self.attend(q, k, v, mask, causal)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
               causal: bool = False) -> torch.Tensor:
        """Attention over already projected heads (B, h, L, d_k) and the output projection W^O."""
        if causal and mask is None:
            # The fused kernel draws the triangle itself and skips the future's blocks: on a CPU it
            # made causal attention 1.4x (12 windows of 64) to 2.8x (32 of 256) faster, forward and
            # backward, than the math kernel with a mask tensor.
            with sdpa_kernel(_FUSED):
                out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.w_o(out.transpose(1, 2).flatten(2))
        if mask is not None:
            mask = mask[:, None, None, :] if mask.dim() == 2 else mask[:, None]
        if causal:
            future = torch.ones(q.shape[2], k.shape[2], dtype=torch.bool, device=q.device).tril()
            mask = future if mask is None else mask & future
        with sdpa_kernel(_backends(q.device)):
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.w_o(out.transpose(1, 2).flatten(2))

    @staticmethod
    def weights(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The attention distribution itself, averaged over heads (for pictures): (B, Lq, Lk)."""
        scores = q.float() @ k.float().transpose(-1, -2) / math.sqrt(q.shape[-1])
        return scores.masked_fill(~mask[:, None, None, :], float("-inf")).softmax(-1).mean(1)
