package org.tttbench.model;

import java.util.SplittableRandom;
import org.tttbench.backend.Backend;
import org.tttbench.backend.InnerGrads;
import org.tttbench.backend.InnerInputs;
import org.tttbench.backend.Tensor;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;

/**
 * The inner-loop benchmarks of SPEC §4: step 4 alone on precomputed XQ, XK, XV (after RoPE),
 * lr and tok, and its gradient of sum(out). Inputs are drawn once, in setup, with the
 * magnitudes the full model produces.
 */
public final class InnerProblem {

    private final Backend be;
    private final ModelConfig cfg;
    private final InnerInputs in;
    private final Tensor out;
    private final Tensor checkpoints;
    private final int interval;
    private final Tensor dOut;
    private final InnerGrads grads;

    public InnerProblem(Backend backend, ModelConfig cfg, int batch, int seqLen, long seed, boolean training,
            int interval) {
        this.be = backend;
        this.cfg = cfg;
        this.interval = interval;
        int h = cfg.heads();
        int f = cfg.headDim();
        int k = cfg.miniBatch();
        int d = cfg.hidden();
        SplittableRandom rnd = new SplittableRandom(seed);
        Tensor xq = random(rnd, 1.0, batch, h, seqLen, f);
        Tensor xk = random(rnd, 1.0, batch, h, seqLen, f);
        Tensor xv = random(rnd, 1.0, batch, h, seqLen, f);
        float[] lrHost = new float[batch * h * seqLen];
        for (int i = 0; i < lrHost.length; i++) lrHost[i] = (float) (sigmoid(rnd.nextGaussian()) / f);
        Tensor lr = be.allocate(batch, h, seqLen);
        be.upload(lrHost, lr);
        float[] tokHost = new float[k];
        for (int i = 0; i < k; i++) tokHost[i] = 1f / (i + 1);
        Tensor tok = be.allocate(k);
        be.upload(tokHost, tok);
        boolean mlp = cfg.tttType() == TttType.MLP;
        int f1 = cfg.innerHidden();
        Tensor w1 = random(rnd, 0.02, h, f, f1);
        Tensor b1 = random(rnd, 0.02, h, 1, f1);
        Tensor w2 = mlp ? random(rnd, 0.02, h, f1, f) : null;
        Tensor b2 = mlp ? random(rnd, 0.02, h, 1, f) : null;
        Tensor normWeight = random(rnd, 0.1, h, f);
        float[] nw = be.download(normWeight);
        for (int i = 0; i < nw.length; i++) nw[i] += 1f;
        be.upload(nw, normWeight);
        Tensor normBias = random(rnd, 0.1, h, f);
        this.in = new InnerInputs(cfg.tttType(), batch, h, seqLen, f, k, xq, xk, xv, lr, tok, w1, b1, w2, b2,
                normWeight, normBias);
        this.out = be.allocate(batch, seqLen, d);
        if (training) {
            int slots = (in.miniBatches() + interval - 1) / interval;
            this.checkpoints = be.allocate(DType.FLOAT32, slots, batch, h, cfg.innerStateSize());
            this.dOut = be.allocate(batch, seqLen, d);
            be.fill(dOut, 1f);
            this.grads = new InnerGrads(
                    be.allocate(batch, h, seqLen, f), be.allocate(batch, h, seqLen, f), be.allocate(batch, h, seqLen, f),
                    be.allocate(batch, h, seqLen), be.allocate(k),
                    be.allocate(h, f, f1), be.allocate(h, 1, f1),
                    mlp ? be.allocate(h, f1, f) : null, mlp ? be.allocate(h, 1, f) : null,
                    be.allocate(h, f), be.allocate(h, f));
        } else {
            this.checkpoints = null;
            this.dOut = null;
            this.grads = null;
        }
    }

    private Tensor random(SplittableRandom rnd, double std, int... shape) {
        Tensor t = be.allocate(shape);
        float[] host = new float[Math.toIntExact(t.size())];
        Parameters.fillNormal(host, std, rnd.nextLong());
        be.upload(host, t);
        return t;
    }

    private static double sigmoid(double x) {
        return 1 / (1 + Math.exp(-x));
    }

    public InnerInputs inputs() {
        return in;
    }

    /** out [B, L, D] of the last forward. */
    public Tensor out() {
        return out;
    }

    public InnerGrads gradients() {
        return grads;
    }

    /** Inner forward: the scan alone. */
    public void forward() {
        be.innerForward(in, out, checkpoints, interval, null);
    }

    /** Inner forward keeping checkpoints, then the gradient of sum(out). */
    public void backward() {
        if (grads == null) throw new IllegalStateException("problem was not built for training");
        be.innerForward(in, out, checkpoints, interval, null);
        for (Tensor g : new Tensor[] {grads.w1(), grads.b1(), grads.w2(), grads.b2(), grads.normWeight(),
                grads.normBias()}) {
            if (g != null) be.fill(g, 0f);
        }
        be.innerBackward(in, checkpoints, interval, dOut, grads);
    }

    public ModelConfig config() {
        return cfg;
    }
}
