package org.tttbench.backend;

import java.util.List;

/**
 * The operations the TTT model is written against (SPEC §3). Each backend implements every
 * op; {@link org.tttbench.model.TttModel} composes them into forward and backward once.
 *
 * <p>Conventions. All tensors are row-major. T = B·L tokens. "[B,H,L,F]" is the per-head
 * layout of the inner loop. Unless an op says otherwise, outputs are overwritten; parameter
 * gradients (named {@code dW…}, {@code dGain}, …) are always <em>accumulated</em>
 * (+=), because a parameter can be used by several sequences or twice (the tied embedding);
 * callers zero them before a backward pass. Reductions accumulate in float32 or wider
 * whatever the storage type, and every output is rounded to its tensor's storage type.
 */
public interface TttOps {

    // ---------------------------------------------------------------- general

    /** Sets every element to {@code value}. */
    void fill(Tensor t, float value);

    /**
     * {@link #fill} of every tensor in {@code ts}; a backend may set tensors that lie back to back
     * in its memory (see {@link Backend#allocateAdjacent}) in one pass.
     */
    void fillAll(List<Tensor> ts, float value);

    /** out = a + b, elementwise (same shapes; out may alias a or b). */
    void add(Tensor a, Tensor b, Tensor out);

    /**
     * Matrix product c = op(a) · op(b) (+ c when {@code accumulate}), op(x) = xᵀ when the
     * matching flag is set. c is [m, n]; op(a) is [m, k] (a is [k, m] when transposed);
     * op(b) is [k, n] (b is [n, k] when transposed). A linear layer y = x Wᵀ with W stored
     * [out, in] is {@code matmul(x, W, y, T, out, in, false, true, false)}.
     */
    void matmul(Tensor a, Tensor b, Tensor c, int m, int n, int k, boolean transA, boolean transB,
            boolean accumulate);

    /**
     * {@link #matmul} for i = 0 … c.size()−1 with the same sizes and flags: c[i] = op(a[i]) ·
     * op(b[i]) (+ c[i] when {@code accumulate}), where a list of one tensor is shared by every
     * product (the input of the Q, K and V projections, say). Each product is what {@link #matmul}
     * gives on the same operands, up to the order of float32 sums; a backend may issue them as
     * one batched launch when
     * the tensors of each list lie at a fixed stride in its memory (see
     * {@link Backend#allocateAdjacent}). The c[i] must not overlap each other or any operand.
     */
    void matmulBatched(List<Tensor> a, List<Tensor> b, List<Tensor> c, int m, int n, int k, boolean transA,
            boolean transB, boolean accumulate);

    /**
     * c = Σᵢ op(a[i]) · op(b[i]) (+ c when {@code accumulate}): the products of {@link #matmul}
     * with the same sizes and flags, summed into one result, as {@code matmul(a[0], b[0], c, …,
     * accumulate)} followed by {@code matmul(a[i], b[i], c, …, true)} for each further i (the
     * input gradient of an input that feeds several products). A list of one tensor is shared;
     * a backend may run the products as one batched launch and sum them in one more when the
     * tensors of each list lie at a fixed stride. c must not overlap an operand.
     */
    void matmulSum(List<Tensor> a, List<Tensor> b, Tensor c, int m, int n, int k, boolean transA, boolean transB,
            boolean accumulate);

    /** The number of products of a batched matmul: c's size, with a and b of size one or the same. */
    static int batchCount(List<Tensor> a, List<Tensor> b, List<Tensor> c) {
        int count = c.size();
        if (count == 0) throw new IllegalArgumentException("matmulBatched: no products");
        if ((a.size() != 1 && a.size() != count) || (b.size() != 1 && b.size() != count)) {
            throw new IllegalArgumentException("matmulBatched: " + a.size() + " and " + b.size() + " operands for "
                    + count + " products (each list must hold one shared operand or one per product)");
        }
        return count;
    }

    // ---------------------------------------------------------------- embedding

    /** out[t, :] = table[ids[t], :]; table [V, D], out [T, D]. */
    void embedding(TokenIds ids, Tensor table, Tensor out);

    /** dTable[ids[t], :] += dOut[t, :], in a fixed order (deterministic). */
    void embeddingBackward(TokenIds ids, Tensor dOut, Tensor dTable);

    // ---------------------------------------------------------------- norms

    /**
     * RMSNorm per row of x [rows, D]: out = x / sqrt(mean(x²) + eps) · gain; saves the
     * reciprocal root rstd [rows] (float32) for the backward.
     */
    void rmsNorm(Tensor x, Tensor gain, Tensor out, Tensor rstd);

    /**
     * The residual add and the RMSNorm that reads it: sum = a + b as {@link #add} (sum may alias
     * a or b), then {@link #rmsNorm}(sum, gain, out, rstd) on the stored sum; out must not alias
     * the others.
     */
    void addRmsNorm(Tensor a, Tensor b, Tensor sum, Tensor gain, Tensor out, Tensor rstd);

    /** dx += ∂/∂x, dGain += ∂/∂gain of rmsNorm, given its input x, gain, saved rstd and dOut. */
    void rmsNormBackward(Tensor x, Tensor gain, Tensor rstd, Tensor dOut, Tensor dx, Tensor dGain);

    /**
     * LayerNorm per row of x [rows, D] (biased variance, eps 1e-6): out = (x − μ)·rstd·weight
     * + bias; saves mean and rstd [rows] (float32).
     */
    void layerNorm(Tensor x, Tensor weight, Tensor bias, Tensor out, Tensor mean, Tensor rstd);

    /** dx = ∂/∂x (overwritten); dWeight, dBias accumulated. */
    void layerNormBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dOut, Tensor dx,
            Tensor dWeight, Tensor dBias);

    // ---------------------------------------------------------------- TTT layer inputs

    /**
     * x [T, D] (tokens of B sequences of length L) to heads [B, H, L, F], applying RoPE with
     * position t mod K to channel pairs (2i, 2i+1) when {@code rope} (SPEC §3 step 2).
     */
    void splitHeads(Tensor x, Tensor heads, int numHeads, int miniBatch, boolean rope);

    /** The transpose of {@link #splitHeads}: dx [T, D] = (inverse rotation of) dHeads; overwrites dx. */
    void splitHeadsBackward(Tensor dHeads, Tensor dx, int numHeads, int miniBatch, boolean rope);

    /**
     * lr[b, h, t] = sigmoid(x[b,t,:]·weight[h,:] + bias[h]) · baseLr / F, x [T, D], weight
     * [H, D] (stored [H, 1, D]), bias [H], lr [B, H, L].
     */
    void tttLearningRate(Tensor x, Tensor weight, Tensor bias, Tensor lr);

    /** dx += ∂/∂x; dWeight, dBias accumulated; uses the saved lr output. */
    void tttLearningRateBackward(Tensor x, Tensor weight, Tensor lr, Tensor dLr, Tensor dx, Tensor dWeight,
            Tensor dBias);

    /** tok[k] = max(0, 1/(k+1) + tokenIdx[k]), both [K]. */
    void tokenEta(Tensor tokenIdx, Tensor tok);

    /** dTokenIdx[k] += dTok[k] where the clamp is not active. */
    void tokenEtaBackward(Tensor tokenIdx, Tensor dTok, Tensor dTokenIdx);

    // ---------------------------------------------------------------- inner loop

    /**
     * The inner scan of SPEC §3 step 4 for every (b, h), mini-batches in order, state
     * initialised from the parameters for every sequence; writes out [B, L, D] (heads
     * concatenated, before post_norm).
     *
     * @param in           inputs and parameters
     * @param checkpoints  null, or [ceil(n/c), B, H, S] float32: slot j receives the state
     *                     before mini-batch j·c (S = {@code ModelConfig.innerStateSize()},
     *                     packed W1, b1, W2, b2)
     * @param interval     c, the checkpoint interval
     * @param lastState    null, or [B, H, S] float32: the state after the last mini-batch
     */
    void innerForward(InnerInputs in, Tensor out, Tensor checkpoints, int interval, Tensor lastState);

    /**
     * Gradient of the inner scan given dOut [B, L, D]. Writes (overwrites) the input
     * gradients of {@code grads} (XQ, XK, XV, lr, and tok summed over B and H) and accumulates
     * the parameter gradients (W1, b1, W2, b2, ttt norm weight and bias, each summed over B).
     * States between checkpoints are recomputed from {@code checkpoints} as written by
     * {@link #innerForward} with the same interval.
     */
    void innerBackward(InnerInputs in, Tensor checkpoints, int interval, Tensor dOut, InnerGrads grads);

    // ---------------------------------------------------------------- feed-forward

    /** out = silu(gate) · up, elementwise. */
    void swiglu(Tensor gate, Tensor up, Tensor out);

    /** dGate, dUp = ∂/∂gate, ∂/∂up of swiglu (overwritten). */
    void swigluBackward(Tensor gate, Tensor up, Tensor dOut, Tensor dGate, Tensor dUp);
}
