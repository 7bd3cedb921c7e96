package org.tttbench.cpu;

import java.util.Arrays;
import java.util.stream.IntStream;
import org.tttbench.backend.InnerGrads;
import org.tttbench.backend.InnerInputs;
import org.tttbench.backend.Tensor;
import org.tttbench.config.TttType;

/**
 * The inner scan of SPEC §3 step 4 over every (b, h) in parallel: the forward, keeping the
 * state at every c-th mini-batch, and the backward, which walks the mini-batches in reverse,
 * one checkpoint segment at a time: it restores the segment's first state, recomputes the
 * states inside the segment (at most c of them), then runs each mini-batch's forward again and
 * its backward, carrying the gradient of the state from one mini-batch to the one before.
 *
 * <p>The state is float32 (SPEC §4, precision): it is rounded after every update, so states
 * restored from float32 checkpoints are bit-identical to the ones the forward held and the
 * gradients do not depend on c at all.
 */
final class InnerScan {

    private final InnerInputs in;
    private final int batch;
    private final int heads;
    private final int seqLen;
    private final int f;
    private final int f1;
    private final int k;
    private final int miniBatches;
    private final int stateSize;
    private final CpuTensor xq;
    private final CpuTensor xk;
    private final CpuTensor xv;
    private final CpuTensor lr;
    private final float[] tok;

    InnerScan(InnerInputs in) {
        this.in = in;
        this.batch = in.batch();
        this.heads = in.heads();
        this.seqLen = in.seqLen();
        this.f = in.headDim();
        this.f1 = in.type() == TttType.MLP ? 4 * f : f;
        this.k = in.miniBatch();
        this.miniBatches = in.miniBatches();
        this.stateSize = in.type() == TttType.MLP ? f * f1 + f1 + f1 * f + f : f * f + f;
        if (seqLen % k != 0) throw new IllegalArgumentException("seqLen " + seqLen + " not divisible by " + k);
        this.xq = expect(in.xq(), "XQ", (long) batch * heads * seqLen * f);
        this.xk = expect(in.xk(), "XK", (long) batch * heads * seqLen * f);
        this.xv = expect(in.xv(), "XV", (long) batch * heads * seqLen * f);
        this.lr = expect(in.lr(), "lr", (long) batch * heads * seqLen);
        this.tok = expect(in.tok(), "tok", k).data;
        expect(in.w1(), "W1", (long) heads * f * f1);
        expect(in.b1(), "b1", (long) heads * f1);
        if (in.type() == TttType.MLP) {
            expect(in.w2(), "W2", (long) heads * f1 * f);
            expect(in.b2(), "b2", (long) heads * f);
        }
        expect(in.normWeight(), "ttt_norm_weight", (long) heads * f);
        expect(in.normBias(), "ttt_norm_bias", (long) heads * f);
    }

    private static CpuTensor expect(Tensor t, String name, long size) {
        CpuTensor c = CpuTensor.of(t);
        if (c.length() != size) {
            throw new IllegalArgumentException("inner " + name + ": expected " + size + " elements, got " + c);
        }
        return c;
    }

    private int slots(int interval) {
        return (miniBatches + interval - 1) / interval;
    }

    private InnerStep step(int h) {
        double[] gamma = Dense.rows(CpuTensor.of(in.normWeight()).data, h * f, 1, f)[0];
        double[] beta = Dense.rows(CpuTensor.of(in.normBias()).data, h * f, 1, f)[0];
        return in.type() == TttType.MLP ? new MlpStep(f, gamma, beta) : new LinearStep(f, gamma, beta);
    }

    /** Head h's initial state from the parameters, packed W1, b1 (W2, b2). */
    private float[] initialState(int h) {
        float[] s = new float[stateSize];
        int at = 0;
        at = copy(in.w1(), h * f * f1, f * f1, s, at);
        at = copy(in.b1(), h * f1, f1, s, at);
        if (in.type() == TttType.MLP) {
            at = copy(in.w2(), h * f1 * f, f1 * f, s, at);
            copy(in.b2(), h * f, f, s, at);
        }
        return s;
    }

    private static int copy(Tensor t, int from, int n, float[] dst, int at) {
        System.arraycopy(CpuTensor.of(t).data, from, dst, at, n);
        return at + n;
    }

    /** Offset of row t of sequence (b, h) in a [B, H, L, ·] tensor, in rows. */
    private int row(int b, int h, int t) {
        return (b * heads + h) * seqLen + t;
    }

    private InnerStep.MiniBatch miniBatch(int b, int h, int n) {
        int base = row(b, h, n * k) * f;
        double[][] q = Dense.rows(xq.data, base, k, f);
        double[][] kx = Dense.rows(xk.data, base, k, f);
        double[][] vx = Dense.rows(xv.data, base, k, f);
        double[][] target = Dense.copy(vx);
        Dense.addScaled(target, -1, kx);
        // eta[i, j] = tok[i] · lr[nK + j]: i the token written, j the token learned from
        double[][] eta = new double[k][k];
        int lrBase = row(b, h, n * k);
        for (int i = 0; i < k; i++) {
            for (int j = 0; j < k; j++) eta[i][j] = (double) tok[i] * lr.data[lrBase + j];
        }
        return new InnerStep.MiniBatch(q, kx, vx, target, eta);
    }

    /** Index in out [B, L, D] of (b, token t, head h, channel 0): heads are concatenated. */
    private int outIndex(int b, int t, int h) {
        return (b * seqLen + t) * heads * f + h * f;
    }

    void forward(CpuTensor out, CpuTensor checkpoints, int interval, CpuTensor lastState) {
        if (out.length() != batch * seqLen * heads * f) throw new IllegalArgumentException("inner out: " + out);
        if (checkpoints != null) checkState(checkpoints, "checkpoints", (long) slots(interval) * batch * heads);
        if (lastState != null) checkState(lastState, "lastState", (long) batch * heads);
        int pairs = batch * heads;
        IntStream.range(0, pairs).parallel().forEach(p -> {
            int b = p / heads;
            int h = p % heads;
            InnerStep step = step(h);
            float[] state = initialState(h);
            for (int n = 0; n < miniBatches; n++) {
                if (checkpoints != null && n % interval == 0) {
                    System.arraycopy(state, 0, checkpoints.data, ((n / interval) * pairs + p) * stateSize, stateSize);
                }
                double[][] o = step.forward(miniBatch(b, h, n), state);
                for (int i = 0; i < k; i++) {
                    int at = outIndex(b, n * k + i, h);
                    for (int c = 0; c < f; c++) out.set(at + c, o[i][c]);
                }
            }
            if (lastState != null) System.arraycopy(state, 0, lastState.data, p * stateSize, stateSize);
        });
    }

    private void checkState(CpuTensor t, String name, long states) {
        if (t.length() != states * stateSize) {
            throw new IllegalArgumentException("inner " + name + ": expected " + states + " states of " + stateSize
                    + " floats, got " + t);
        }
    }

    /** What one (b, h) sequence contributes to the gradients summed over the batch. */
    private record SequenceGrads(double[] dState, double[] dGamma, double[] dBeta, double[] dTok) {
    }

    void backward(CpuTensor checkpoints, int interval, CpuTensor dOut, InnerGrads grads) {
        checkState(checkpoints, "checkpoints", (long) slots(interval) * batch * heads);
        if (dOut.length() != batch * seqLen * heads * f) throw new IllegalArgumentException("inner dOut: " + dOut);
        CpuTensor dq = expect(grads.xq(), "dXQ", xq.length());
        CpuTensor dk = expect(grads.xk(), "dXK", xk.length());
        CpuTensor dv = expect(grads.xv(), "dXV", xv.length());
        CpuTensor dlr = expect(grads.lr(), "dlr", lr.length());
        int pairs = batch * heads;
        SequenceGrads[] perSequence = new SequenceGrads[pairs];
        IntStream.range(0, pairs).parallel().forEach(p -> {
            int b = p / heads;
            int h = p % heads;
            InnerStep step = step(h);
            // The final state is not an output: its gradient is zero.
            SequenceGrads sg = new SequenceGrads(new double[stateSize], new double[f], new double[f], new double[k]);
            for (int slot = slots(interval) - 1; slot >= 0; slot--) {
                int first = slot * interval;
                int last = Math.min(miniBatches, first + interval);
                float[][] states = new float[last - first][];
                int at = (slot * pairs + p) * stateSize;
                states[0] = Arrays.copyOfRange(checkpoints.data, at, at + stateSize);
                for (int n = first; n + 1 < last; n++) {
                    float[] s = states[n - first].clone();
                    step.forward(miniBatch(b, h, n), s);
                    states[n - first + 1] = s;
                }
                for (int n = last - 1; n >= first; n--) {
                    step.forward(miniBatch(b, h, n), states[n - first].clone());
                    double[][] dOutRows = new double[k][f];
                    for (int i = 0; i < k; i++) {
                        int o = outIndex(b, n * k + i, h);
                        for (int c = 0; c < f; c++) dOutRows[i][c] = dOut.get(o + c);
                    }
                    InnerStep.Grads g = step.backward(dOutRows, sg.dState(), sg.dGamma(), sg.dBeta());
                    int base = row(b, h, n * k);
                    for (int i = 0; i < k; i++) {
                        for (int c = 0; c < f; c++) {
                            dq.set((base + i) * f + c, g.dq()[i][c]);
                            dk.set((base + i) * f + c, g.dk()[i][c]);
                            dv.set((base + i) * f + c, g.dv()[i][c]);
                        }
                    }
                    // eta[i, j] = tok[i] · lr[j]
                    for (int j = 0; j < k; j++) {
                        double s = 0;
                        for (int i = 0; i < k; i++) {
                            double de = g.deta()[i][j];
                            s += de * tok[i];
                            sg.dTok()[i] += de * lr.data[base + j];
                        }
                        dlr.set(base + j, s);
                    }
                }
            }
            perSequence[p] = sg;
        });
        reduce(perSequence, grads);
    }

    /** Sums the per-sequence gradients over the batch in a fixed order (deterministic results). */
    private void reduce(SequenceGrads[] perSequence, InnerGrads grads) {
        double[] dTok = new double[k];
        for (int h = 0; h < heads; h++) {
            double[] dState = new double[stateSize];
            double[] dGamma = new double[f];
            double[] dBeta = new double[f];
            for (int b = 0; b < batch; b++) {
                SequenceGrads sg = perSequence[b * heads + h];
                Dense.axpy(1, sg.dState(), dState);
                Dense.axpy(1, sg.dGamma(), dGamma);
                Dense.axpy(1, sg.dBeta(), dBeta);
                Dense.axpy(1, sg.dTok(), dTok);
            }
            int at = 0;
            at = accumulate(grads.w1(), h * f * f1, f * f1, dState, at);
            at = accumulate(grads.b1(), h * f1, f1, dState, at);
            if (in.type() == TttType.MLP) {
                at = accumulate(grads.w2(), h * f1 * f, f1 * f, dState, at);
                accumulate(grads.b2(), h * f, f, dState, at);
            }
            accumulate(grads.normWeight(), h * f, f, dGamma, 0);
            accumulate(grads.normBias(), h * f, f, dBeta, 0);
        }
        CpuTensor dTokTensor = expect(grads.tok(), "dtok", k);
        for (int i = 0; i < k; i++) dTokTensor.set(i, dTok[i]);
    }

    private static int accumulate(Tensor t, int from, int n, double[] src, int at) {
        CpuTensor c = CpuTensor.of(t);
        for (int i = 0; i < n; i++) c.add(from + i, src[at + i]);
        return at + n;
    }
}
