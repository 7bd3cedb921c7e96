package org.tttbench.gpu;

import static org.tttbench.gpu.Checks.elements;
import static org.tttbench.gpu.Checks.gpu;
import static org.tttbench.gpu.Checks.requireSize;
import static org.tttbench.gpu.Checks.sameType;

import org.tttbench.backend.Tensor;
import org.tttbench.config.ModelConfig;

/**
 * The launcher of hip/ttt_inputs.hip: what the TTT layer computes before its inner loop (the
 * heads with RoPE, the learning rates, the token scale) and the backward of each.
 */
final class TttInputs {

    /** Tokens per float32 partial of the learning-rate weight gradient. */
    private static final int LR_CHUNK_TOKENS = 64;

    private final KernelRegistry kernels;
    private final Scratch scratch;
    private final Elementwise elementwise;

    TttInputs(KernelRegistry kernels, Scratch scratch, Elementwise elementwise) {
        this.kernels = kernels;
        this.scratch = scratch;
        this.elementwise = elementwise;
    }

    void splitHeads(Tensor x, Tensor heads, int numHeads, int miniBatch, boolean rope) {
        GpuTensor gh = gpu(heads);
        int[] s = headShape("splitHeads", gh, numHeads);
        requireSize("splitHeads", "x", x, gh.elements());
        sameType("splitHeads", gh.dtype(), x);
        int pairs = elements("splitHeads", gh) / 2;
        kernels.start("ttt_inputs_split_heads", gh.dtype()).p(x).p(gh).i(s[0]).i(s[2]).i(numHeads).i(s[3]).i(miniBatch)
                .i(rope ? 1 : 0).f((float) ModelConfig.ROPE_THETA).launch(LaunchVars.of("N", pairs));
    }

    void splitHeadsBackward(Tensor dHeads, Tensor dx, int numHeads, int miniBatch, boolean rope) {
        GpuTensor gh = gpu(dHeads);
        int[] s = headShape("splitHeadsBackward", gh, numHeads);
        requireSize("splitHeadsBackward", "dx", dx, gh.elements());
        sameType("splitHeadsBackward", gpu(dx).dtype(), dHeads);
        int pairs = elements("splitHeadsBackward", gh) / 2;
        kernels.start("ttt_inputs_split_heads_backward", gh.dtype()).p(dHeads).p(dx).i(s[0]).i(s[2]).i(numHeads).i(s[3])
                .i(miniBatch).i(rope ? 1 : 0).f((float) ModelConfig.ROPE_THETA).launch(LaunchVars.of("N", pairs));
    }

    /** [B, H, L, F] with H = numHeads and F even (RoPE rotates channel pairs). */
    private static int[] headShape(String op, GpuTensor heads, int numHeads) {
        int[] s = heads.shape();
        if (s.length != 4 || s[1] != numHeads) {
            throw new IllegalArgumentException(op + ": heads must be [B, " + numHeads + ", L, F], got " + heads);
        }
        if (s[3] % 2 != 0) throw new IllegalArgumentException(op + ": head dim must be even, got " + s[3]);
        return s;
    }

    /** The learning rates' shape [B, H, L] and model width D, checked against x, weight and bias. */
    private record LrShape(int batch, int heads, int seqLen, int dim) {
        int tokens() {
            return batch * seqLen;
        }

        float scale() {
            return (float) (ModelConfig.BASE_LR / (dim / heads));
        }

        LaunchVars vars() {
            return LaunchVars.of("TOKENS", tokens()).and("H", heads).and("D", dim).and("CHUNK", LR_CHUNK_TOKENS);
        }
    }

    private static LrShape lrShape(String op, Tensor x, Tensor weight, Tensor bias, Tensor lr) {
        GpuTensor gl = gpu(lr);
        int[] s = gl.shape();
        if (s.length != 3) throw new IllegalArgumentException(op + ": lr must be [B, H, L], got " + gl);
        int heads = s[1];
        long dimL = gpu(weight).elements() / heads;
        requireSize(op, "weight", weight, dimL * heads);
        int dim = Math.toIntExact(dimL);
        if (dim % heads != 0) throw new IllegalArgumentException(op + ": D " + dim + " not divisible by H " + heads);
        requireSize(op, "x", x, (long) s[0] * s[2] * dim);
        if (bias != null) requireSize(op, "bias", bias, heads);
        return new LrShape(s[0], heads, s[2], dim);
    }

    void learningRate(Tensor x, Tensor weight, Tensor bias, Tensor lr) {
        LrShape s = lrShape("tttLearningRate", x, weight, bias, lr);
        sameType("tttLearningRate", gpu(lr).dtype(), x, weight, bias);
        kernels.start("ttt_inputs_lr", gpu(lr).dtype()).p(x).p(weight).p(bias).p(lr).i(s.batch()).i(s.seqLen())
                .i(s.heads()).i(s.dim()).f(s.scale()).launch(s.vars());
    }

    void learningRateBackward(Tensor x, Tensor weight, Tensor lr, Tensor dLr, Tensor dx, Tensor dWeight, Tensor dBias) {
        String op = "tttLearningRateBackward";
        LrShape s = lrShape(op, x, weight, null, lr);
        requireSize(op, "dx", dx, (long) s.tokens() * s.dim());
        requireSize(op, "dLr", dLr, gpu(lr).elements());
        requireSize(op, "dWeight", dWeight, (long) s.heads() * s.dim());
        requireSize(op, "dBias", dBias, s.heads());
        var t = gpu(x).dtype();
        sameType(op, t, weight, lr, dLr, dx, dWeight, dBias);
        LaunchVars v = s.vars();
        long dz = scratch.get("lr dz", 4L * kernels.size("ttt_inputs_lr_backward_dz_floats", v));
        kernels.start("ttt_inputs_lr_backward", t).p(weight).p(lr).p(dLr).p(dx).p(dz).i(s.batch()).i(s.seqLen())
                .i(s.heads()).i(s.dim()).f(s.scale()).launch(v);
        int cols = s.dim() + 1;  // a head's weight gradient, then its bias gradient
        long partFloats = kernels.size("ttt_inputs_lr_backward_params_partial_floats", v);
        int chunks = Math.toIntExact(partFloats / ((long) s.heads() * cols));
        long part = scratch.get("lr partials", 4L * partFloats);
        kernels.start("ttt_inputs_lr_backward_params", t).p(x).p(dz).p(part).i(s.tokens()).i(s.heads()).i(s.dim())
                .i(LR_CHUNK_TOKENS).launch(v);
        elementwise.sumPartials(part, dWeight, chunks, s.heads() * cols, s.heads(), cols, s.dim(), true);
        elementwise.sumPartials(part + 4L * s.dim(), dBias, chunks, s.heads() * cols, s.heads(), cols, 1, true);
    }

    void tokenEta(Tensor tokenIdx, Tensor tok) {
        GpuTensor gt = gpu(tok);
        int k = elements("tokenEta", gt);
        requireSize("tokenEta", "tokenIdx", tokenIdx, k);
        sameType("tokenEta", gt.dtype(), tokenIdx);
        kernels.start("ttt_inputs_token_eta", gt.dtype()).p(tokenIdx).p(gt).i(k).launch(LaunchVars.of("K", k));
    }

    void tokenEtaBackward(Tensor tokenIdx, Tensor dTok, Tensor dTokenIdx) {
        String op = "tokenEtaBackward";
        GpuTensor gi = gpu(tokenIdx);
        int k = elements(op, gi);
        requireSize(op, "dTok", dTok, k);
        requireSize(op, "dTokenIdx", dTokenIdx, k);
        sameType(op, gi.dtype(), dTok, dTokenIdx);
        kernels.start("ttt_inputs_token_eta_backward", gi.dtype()).p(tokenIdx).p(dTok).p(dTokenIdx).i(k)
                .launch(LaunchVars.of("K", k));
    }
}
