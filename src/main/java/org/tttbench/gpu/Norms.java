package org.tttbench.gpu;

import static org.tttbench.gpu.Checks.gpu;
import static org.tttbench.gpu.Checks.requireSize;
import static org.tttbench.gpu.Checks.rows;
import static org.tttbench.gpu.Checks.sameSize;
import static org.tttbench.gpu.Checks.sameType;
import static org.tttbench.gpu.Checks.statistic;

import org.tttbench.backend.Tensor;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;

/**
 * The launcher of hip/norms.hip: RMSNorm (alone and fused with the residual add before it) and
 * LayerNorm, forward and backward. The backwards write one float32 partial of the gain (weight,
 * bias) gradient per chunk of rows, summed in order by {@link Elementwise#sumPartials}.
 */
final class Norms {

    /** Rows per partial of the backward: enough blocks to fill a device at 2048 tokens, few partials. */
    private static final int CHUNK_ROWS = 16;

    private final KernelRegistry kernels;
    private final Scratch scratch;
    private final Elementwise elementwise;

    Norms(KernelRegistry kernels, Scratch scratch, Elementwise elementwise) {
        this.kernels = kernels;
        this.scratch = scratch;
        this.elementwise = elementwise;
    }

    private static LaunchVars rowVars(int rows, int dim) {
        return LaunchVars.of("ROWS", rows).and("D", dim).and("CHUNK", CHUNK_ROWS);
    }

    void rmsNorm(Tensor x, Tensor gain, Tensor out, Tensor rstd) {
        GpuTensor gx = gpu(x);
        int dim = Math.toIntExact(gain.size());
        int rows = rows("rmsNorm", gx, dim);
        sameSize("rmsNorm", out, gx);
        sameType("rmsNorm", gx.dtype(), gain, out);
        statistic("rmsNorm", "rstd", rstd, rows);
        kernels.start("norms_rmsnorm", gx.dtype()).p(gx).p(gain).p(out).p(rstd).i(rows).i(dim)
                .f((float) ModelConfig.RMS_NORM_EPS).launch(rowVars(rows, dim));
    }

    /** One launch: each row's sum is stored and normed while it is on chip, instead of written and read again. */
    void addRmsNorm(Tensor a, Tensor b, Tensor sum, Tensor gain, Tensor out, Tensor rstd) {
        GpuTensor gs = gpu(sum);
        int dim = Math.toIntExact(gain.size());
        int rows = rows("addRmsNorm", gs, dim);
        sameSize("addRmsNorm", a, gs);
        sameSize("addRmsNorm", b, gs);
        sameSize("addRmsNorm", out, gs);
        sameType("addRmsNorm", gs.dtype(), a, b, gain, out);
        statistic("addRmsNorm", "rstd", rstd, rows);
        kernels.start("norms_add_rmsnorm", gs.dtype()).p(a).p(b).p(gs).p(gain).p(out).p(rstd).i(rows).i(dim)
                .f((float) ModelConfig.RMS_NORM_EPS).launch(rowVars(rows, dim));
    }

    void rmsNormBackward(Tensor x, Tensor gain, Tensor rstd, Tensor dOut, Tensor dx, Tensor dGain) {
        String op = "rmsNormBackward";
        GpuTensor gx = gpu(x);
        int dim = Math.toIntExact(gain.size());
        int rows = rows(op, gx, dim);
        requireSize(op, "dOut", dOut, gx.elements());
        requireSize(op, "dx", dx, gx.elements());
        requireSize(op, "dGain", dGain, dim);
        requireSize(op, "rstd", rstd, rows);
        sameType(op, gx.dtype(), gain, dOut, dx, dGain);
        sameType(op, DType.FLOAT32, rstd);
        LaunchVars v = rowVars(rows, dim);
        long partFloats = kernels.size("norms_rmsnorm_backward_partial_floats", v);
        int chunks = Math.toIntExact(partFloats / dim);  // one partial of the gain gradient a chunk
        long part = scratch.get("norm partials", 4L * partFloats);
        kernels.start("norms_rmsnorm_backward", gx.dtype()).p(x).p(gain).p(rstd).p(dOut).p(dx).p(part).i(rows).i(dim)
                .i(CHUNK_ROWS).launch(v);
        elementwise.sumPartials(part, dGain, chunks, dim, 1, 0, dim, true);
    }

    void layerNorm(Tensor x, Tensor weight, Tensor bias, Tensor out, Tensor mean, Tensor rstd) {
        GpuTensor gx = gpu(x);
        int dim = Math.toIntExact(weight.size());
        int rows = rows("layerNorm", gx, dim);
        sameSize("layerNorm", out, gx);
        requireSize("layerNorm", "bias", bias, dim);
        sameType("layerNorm", gx.dtype(), weight, bias, out);
        statistic("layerNorm", "mean", mean, rows);
        statistic("layerNorm", "rstd", rstd, rows);
        kernels.start("norms_layernorm", gx.dtype()).p(gx).p(weight).p(bias).p(out).p(mean).p(rstd).i(rows).i(dim)
                .f((float) ModelConfig.LAYER_NORM_EPS).launch(rowVars(rows, dim));
    }

    void layerNormBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dOut, Tensor dx, Tensor dWeight,
            Tensor dBias) {
        String op = "layerNormBackward";
        GpuTensor gx = gpu(x);
        int dim = Math.toIntExact(weight.size());
        int rows = rows(op, gx, dim);
        requireSize(op, "dOut", dOut, gx.elements());
        requireSize(op, "dx", dx, gx.elements());
        requireSize(op, "dWeight", dWeight, dim);
        requireSize(op, "dBias", dBias, dim);
        requireSize(op, "mean", mean, rows);
        requireSize(op, "rstd", rstd, rows);
        sameType(op, gx.dtype(), weight, dOut, dx, dWeight, dBias);
        sameType(op, DType.FLOAT32, mean, rstd);
        LaunchVars v = rowVars(rows, dim);
        long partFloats = kernels.size("norms_layernorm_backward_partial_floats", v);
        int chunks = Math.toIntExact(partFloats / (2L * dim));  // partials of the weight, then of the bias
        long part = scratch.get("norm partials", 4L * partFloats);
        kernels.start("norms_layernorm_backward", gx.dtype()).p(x).p(weight).p(mean).p(rstd).p(dOut).p(dx).p(part)
                .i(rows).i(dim).i(CHUNK_ROWS).launch(v);
        elementwise.sumPartials(part, dWeight, chunks, dim, 1, 0, dim, true);
        elementwise.sumPartials(part + 4L * chunks * dim, dBias, chunks, dim, 1, 0, dim, true);
    }
}
