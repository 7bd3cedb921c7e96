package org.tttbench.backend;

import org.tttbench.config.TttType;

/**
 * What the inner scan reads: the per-head inputs after RoPE, the learning rates and the
 * inner model's initial parameters (W2 and b2 null for TTT-Linear).
 *
 * @param xq        [B, H, L, F]
 * @param xk        [B, H, L, F]
 * @param xv        [B, H, L, F]
 * @param lr        [B, H, L] (ttt_lr_eta)
 * @param tok       [K] (token_eta, after the clamp)
 * @param w1        [H, F, F] (linear) or [H, F, 4F] (mlp)
 * @param b1        [H, 1, F] or [H, 1, 4F]
 * @param w2        [H, 4F, F] or null
 * @param b2        [H, 1, F] or null
 * @param normWeight ttt_norm_weight [H, F]
 * @param normBias   ttt_norm_bias [H, F]
 */
public record InnerInputs(
        TttType type, int batch, int heads, int seqLen, int headDim, int miniBatch,
        Tensor xq, Tensor xk, Tensor xv, Tensor lr, Tensor tok,
        Tensor w1, Tensor b1, Tensor w2, Tensor b2, Tensor normWeight, Tensor normBias) {

    public int miniBatches() {
        return seqLen / miniBatch;
    }
}
