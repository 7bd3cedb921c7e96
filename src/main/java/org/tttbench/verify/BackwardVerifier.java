package org.tttbench.verify;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
import org.tttbench.backend.Backend;
import org.tttbench.backend.InnerGrads;
import org.tttbench.backend.InnerInputs;
import org.tttbench.backend.Tensor;
import org.tttbench.backend.TokenIds;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;
import org.tttbench.gpu.GpuBackend;
import org.tttbench.model.InnerProblem;
import org.tttbench.model.ParameterSpec;
import org.tttbench.model.Parameters;
import org.tttbench.model.TttModel;
import org.tttbench.validate.Validator;
import org.tttbench.verify.Verifier.Kind;
import org.tttbench.verify.Verifier.Row;

/**
 * Checks the backward ops of a backend (a GPU's) against the CPU reference, as {@link Verifier}
 * does the forward: every backward op on fresh random inputs, the inner-loop backward, the
 * inner-backward benchmark's own problem and the whole training step (every parameter's
 * gradient). Outputs that an op overwrites are poisoned with NaN on the backend under test;
 * gradients that an op accumulates start from the same random values on both sides.
 *
 * <p>Two checks need no reference: gradients do not depend on the checkpoint interval beyond
 * rounding, and the same inputs give the same bits on a second run.
 */
public final class BackwardVerifier extends Comparison {

    /** Checkpoint intervals whose gradients must agree (SPEC §4). */
    static final int[] INTERVALS = {1, 2, 4, 8, 16};

    BackwardVerifier(Backend test, Backend ref, boolean tf32, long seed, PrintStream log) {
        super(test, ref, tf32, seed, log);
    }

    // ---------------------------------------------------------------- single ops

    /** Every backward op outside the inner loop, at the shapes of {@code cfg}. */
    void checkOps(ModelConfig cfg, int batch, int seqLen) {
        int tokens = batch * seqLen;
        int d = cfg.hidden();
        int h = cfg.heads();
        int f = cfg.headDim();
        int k = cfg.miniBatch();
        int ffn = cfg.ffn();

        // Few distinct ids, so that most rows of the table sum several tokens.
        int vocab = Math.min(cfg.vocab(), Math.max(4, tokens / 4));
        int[] ids = new int[tokens];
        for (int i = 0; i < tokens; i++) ids[i] = rnd.nextInt(vocab);
        TokenIds ti = test.uploadIds(ids, batch, seqLen);
        TokenIds ri = ref.uploadIds(ids, batch, seqLen);
        Pair dOut = random(0, 1, tokens, d);
        Pair dTable = random(0, 0.1, vocab, d);
        test.embeddingBackward(ti, dOut.t(), dTable.t());
        ref.embeddingBackward(ri, dOut.r(), dTable.r());
        compare("embeddingBackward dTable (+=)", Kind.REDUCE, dTable);

        Pair x = random(0, 1, tokens, d);
        Pair gain = random(1, 0.1, d);
        Pair rstd = new Pair(test.allocate(DType.FLOAT32, tokens), ref.allocate(DType.FLOAT32, tokens));
        Pair normed = output(tokens, d);
        test.rmsNorm(x.t(), gain.t(), normed.t(), rstd.t());
        ref.rmsNorm(x.r(), gain.r(), normed.r(), rstd.r());
        // The reference's own saved statistic on both sides: the op under test is the backward.
        test.upload(ref.download(rstd.r()), rstd.t());
        Pair dy = random(0, 1, tokens, d);
        Pair dx = random(0, 1, tokens, d);
        Pair dGain = random(0, 0.1, d);
        test.rmsNormBackward(x.t(), gain.t(), rstd.t(), dy.t(), dx.t(), dGain.t());
        ref.rmsNormBackward(x.r(), gain.r(), rstd.r(), dy.r(), dx.r(), dGain.r());
        compare("rmsNormBackward dx (+=)", Kind.REDUCE, dx);
        compare("rmsNormBackward dGain (+=)", Kind.REDUCE, dGain);

        float[] lnHost = normal((long) tokens * d, 0, 1);
        for (int row = 0; row < tokens; row++) {
            double shift = 3 * rnd.nextGaussian();
            double scale = 0.5 + rnd.nextDouble();
            for (int c = 0; c < d; c++) lnHost[row * d + c] = (float) (shift + scale * lnHost[row * d + c]);
        }
        Pair lnIn = input(lnHost, dtype, tokens, d);
        Pair lnW = random(1, 0.1, d);
        Pair lnB = random(0, 0.1, d);
        Pair lnOut = output(tokens, d);
        Pair mean = new Pair(test.allocate(DType.FLOAT32, tokens), ref.allocate(DType.FLOAT32, tokens));
        Pair lnRstd = new Pair(test.allocate(DType.FLOAT32, tokens), ref.allocate(DType.FLOAT32, tokens));
        ref.layerNorm(lnIn.r(), lnW.r(), lnB.r(), lnOut.r(), mean.r(), lnRstd.r());
        test.upload(ref.download(mean.r()), mean.t());
        test.upload(ref.download(lnRstd.r()), lnRstd.t());
        Pair lnDy = random(0, 1, tokens, d);
        Pair lnDx = output(tokens, d);
        Pair lnDw = random(0, 0.1, d);
        Pair lnDb = random(0, 0.1, d);
        test.layerNormBackward(lnIn.t(), lnW.t(), mean.t(), lnRstd.t(), lnDy.t(), lnDx.t(), lnDw.t(), lnDb.t());
        ref.layerNormBackward(lnIn.r(), lnW.r(), mean.r(), lnRstd.r(), lnDy.r(), lnDx.r(), lnDw.r(), lnDb.r());
        compare("layerNormBackward dx", Kind.REDUCE, lnDx);
        compare("layerNormBackward dWeight (+=)", Kind.REDUCE, lnDw);
        compare("layerNormBackward dBias (+=)", Kind.REDUCE, lnDb);

        for (boolean rope : new boolean[] {true, false}) {
            Pair dHeads = random(0, 1, batch, h, seqLen, f);
            Pair dSplit = output(tokens, d);
            test.splitHeadsBackward(dHeads.t(), dSplit.t(), h, k, rope);
            ref.splitHeadsBackward(dHeads.r(), dSplit.r(), h, k, rope);
            compare(rope ? "splitHeadsBackward + RoPE" : "splitHeadsBackward", rope ? Kind.ELEMENT : Kind.EXACT, dSplit);
        }

        Pair lrW = random(0, 1.5 / Math.sqrt(d), h, 1, d);
        Pair lrB = random(0, 0.5, h, 1);
        Pair lr = output(batch, h, seqLen);
        ref.tttLearningRate(x.r(), lrW.r(), lrB.r(), lr.r());
        test.upload(ref.download(lr.r()), lr.t());
        Pair dLr = random(0, 1, batch, h, seqLen);
        Pair lrDx = random(0, 1, tokens, d);
        Pair lrDw = random(0, 0.1, h, 1, d);
        Pair lrDb = random(0, 0.1, h, 1);
        test.tttLearningRateBackward(x.t(), lrW.t(), lr.t(), dLr.t(), lrDx.t(), lrDw.t(), lrDb.t());
        ref.tttLearningRateBackward(x.r(), lrW.r(), lr.r(), dLr.r(), lrDx.r(), lrDw.r(), lrDb.r());
        compare("tttLearningRateBackward dx (+=)", Kind.REDUCE, lrDx);
        compare("tttLearningRateBackward dWeight (+=)", Kind.REDUCE, lrDw);
        compare("tttLearningRateBackward dBias (+=)", Kind.REDUCE, lrDb);

        float[] idx = normal(k, 0, 0.3);
        idx[Math.min(1, k - 1)] = -2f;  // the clamp holds this one at zero: no gradient
        Pair tokenIdx = input(idx, dtype, k);
        Pair dTok = random(0, 1, k);
        Pair dTokenIdx = random(0, 0.1, k);
        test.tokenEtaBackward(tokenIdx.t(), dTok.t(), dTokenIdx.t());
        ref.tokenEtaBackward(tokenIdx.r(), dTok.r(), dTokenIdx.r());
        compare("tokenEtaBackward (+=)", Kind.ELEMENT, dTokenIdx);

        Pair gate = random(0, 2, tokens, ffn);
        Pair up = random(0, 1, tokens, ffn);
        Pair dSwi = random(0, 1, tokens, ffn);
        Pair dGate = output(tokens, ffn);
        Pair dUp = output(tokens, ffn);
        test.swigluBackward(gate.t(), up.t(), dSwi.t(), dGate.t(), dUp.t());
        ref.swigluBackward(gate.r(), up.r(), dSwi.r(), dGate.r(), dUp.r());
        compare("swigluBackward dGate", Kind.ELEMENT, dGate);
        compare("swigluBackward dUp", Kind.ELEMENT, dUp);
    }

    // ---------------------------------------------------------------- inner loop

    /** Random inner-scan inputs on both backends, as Verifier.checkInner draws them. */
    private record Inner(InnerInputs t, InnerInputs r) {
    }

    private Inner innerInputs(ModelConfig cfg, int batch, int seqLen) {
        int h = cfg.heads();
        int f = cfg.headDim();
        int k = cfg.miniBatch();
        int f1 = cfg.innerHidden();
        boolean mlp = cfg.tttType() == TttType.MLP;
        Pair xq = random(0, 1, batch, h, seqLen, f);
        Pair xk = random(0, 1, batch, h, seqLen, f);
        Pair xv = random(0, 1, batch, h, seqLen, f);
        float[] lrHost = new float[batch * h * seqLen];
        for (int i = 0; i < lrHost.length; i++) lrHost[i] = (float) (1 / (1 + Math.exp(-rnd.nextGaussian())) / f);
        Pair lr = input(lrHost, dtype, batch, h, seqLen);
        float[] tokHost = new float[k];
        for (int i = 0; i < k; i++) tokHost[i] = (float) Math.max(0, 1.0 / (i + 1) + 0.1 * rnd.nextGaussian());
        tokHost[Math.min(2, k - 1)] = 0f;
        Pair tok = input(tokHost, dtype, k);
        Pair w1 = random(0, 0.02, h, f, f1);
        Pair b1 = random(0, 0.02, h, 1, f1);
        Pair w2 = mlp ? random(0, 0.02, h, f1, f) : null;
        Pair b2 = mlp ? random(0, 0.02, h, 1, f) : null;
        Pair nw = random(1, 0.1, h, f);
        Pair nb = random(0, 0.1, h, f);
        return new Inner(
                new InnerInputs(cfg.tttType(), batch, h, seqLen, f, k, xq.t(), xk.t(), xv.t(), lr.t(), tok.t(), w1.t(),
                        b1.t(), mlp ? w2.t() : null, mlp ? b2.t() : null, nw.t(), nb.t()),
                new InnerInputs(cfg.tttType(), batch, h, seqLen, f, k, xq.r(), xk.r(), xv.r(), lr.r(), tok.r(), w1.r(),
                        b1.r(), mlp ? w2.r() : null, mlp ? b2.r() : null, nw.r(), nb.r()));
    }

    /** Gradients of an inner backward on both backends: inputs' poisoned, parameters' random (accumulated). */
    private record Grads(InnerGrads t, InnerGrads r) {
    }

    private Grads innerGrads(ModelConfig cfg, int batch, int seqLen) {
        int h = cfg.heads();
        int f = cfg.headDim();
        int k = cfg.miniBatch();
        int f1 = cfg.innerHidden();
        boolean mlp = cfg.tttType() == TttType.MLP;
        Pair dq = output(batch, h, seqLen, f);
        Pair dk = output(batch, h, seqLen, f);
        Pair dv = output(batch, h, seqLen, f);
        Pair dlr = output(batch, h, seqLen);
        Pair dtok = output(k);
        Pair dw1 = random(0, 0.1, h, f, f1);
        Pair db1 = random(0, 0.1, h, 1, f1);
        Pair dw2 = mlp ? random(0, 0.1, h, f1, f) : null;
        Pair db2 = mlp ? random(0, 0.1, h, 1, f) : null;
        Pair dnw = random(0, 0.1, h, f);
        Pair dnb = random(0, 0.1, h, f);
        return new Grads(
                new InnerGrads(dq.t(), dk.t(), dv.t(), dlr.t(), dtok.t(), dw1.t(), db1.t(), mlp ? dw2.t() : null,
                        mlp ? db2.t() : null, dnw.t(), dnb.t()),
                new InnerGrads(dq.r(), dk.r(), dv.r(), dlr.r(), dtok.r(), dw1.r(), db1.r(), mlp ? dw2.r() : null,
                        mlp ? db2.r() : null, dnw.r(), dnb.r()));
    }

    private static Map<String, Tensor> named(InnerGrads g) {
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put("dXQ", g.xq());
        m.put("dXK", g.xk());
        m.put("dXV", g.xv());
        m.put("dlr", g.lr());
        m.put("dtok", g.tok());
        m.put("dW1 (+=)", g.w1());
        m.put("db1 (+=)", g.b1());
        if (g.w2() != null) m.put("dW2 (+=)", g.w2());
        if (g.b2() != null) m.put("db2 (+=)", g.b2());
        m.put("dγ (+=)", g.normWeight());
        m.put("dβ (+=)", g.normBias());
        return m;
    }

    private void compareGrads(String prefix, Grads g) {
        Map<String, Tensor> t = named(g.t());
        Map<String, Tensor> r = named(g.r());
        for (String name : t.keySet()) compare(prefix + " " + name, Kind.SCAN, t.get(name), r.get(name));
    }

    /**
     * The inner backward on random inputs and a random dOut, at checkpoint intervals 1 and 3 (a
     * last segment shorter than the others when there are 4 or more mini-batches). The
     * checkpoints are the reference forward's, uploaded to both, so the rows judge the backward
     * alone; one more run uses the tested backend's own forward.
     *
     * @param placement called with each label before the test backend runs (to force a kernel
     *                  variant), then with null; labels "" when the backend has none
     */
    void checkInner(ModelConfig cfg, int batch, int seqLen, List<String> labels, Consumer<String> placement) {
        String type = cfg.tttType().flag();
        int h = cfg.heads();
        int s = cfg.innerStateSize();
        int n = seqLen / cfg.miniBatch();
        Inner in = innerInputs(cfg, batch, seqLen);
        for (int interval : new int[] {1, 3}) {
            int slots = (n + interval - 1) / interval;
            Tensor refOut = ref.allocate(batch, seqLen, cfg.hidden());
            Tensor refCk = ref.allocate(DType.FLOAT32, slots, batch, h, s);
            ref.innerForward(in.r(), refOut, refCk, interval, null);
            float[] ck = ref.download(refCk);
            Pair dOut = random(0, 1, batch, seqLen, cfg.hidden());
            for (String label : labels) {
                // The backend's own choice at interval 1 is the parallel form: each of its chains.
                List<Integer> chains = label.isEmpty() && interval == 1 && test instanceof GpuBackend gb
                        ? gb.innerBackwardChains(cfg.tttType(), cfg.headDim(), cfg.miniBatch()) : List.of();
                for (Integer chain : chains.size() > 1 ? chains : java.util.Collections.<Integer>singletonList(null)) {
                    Grads g = innerGrads(cfg, batch, seqLen);
                    Tensor testCk = test.allocate(DType.FLOAT32, slots, batch, h, s);
                    test.upload(ck, testCk);
                    placement.accept(label);
                    if (chain != null) ((GpuBackend) test).forceInnerBackwardChain(chain);
                    try {
                        test.innerBackward(in.t(), testCk, interval, dOut.t(), g.t());
                    } finally {
                        placement.accept(null);
                        if (chain != null) ((GpuBackend) test).forceInnerBackwardChain(null);
                    }
                    ref.innerBackward(in.r(), refCk, interval, dOut.r(), g.r());
                    String what = chain != null ? "chain " + (chain == 1 ? "one block" : "cluster " + chain) : label;
                    compareGrads("innerBackward " + type + " c=" + interval + (what.isEmpty() ? "" : " [" + what + "]"), g);
                }
            }
        }
        // The tested backend's own forward writes the checkpoints its backward reads.
        int interval = 2;
        int slots = (n + interval - 1) / interval;
        Pair out = output(batch, seqLen, cfg.hidden());
        Pair ck = new Pair(test.allocate(DType.FLOAT32, slots, batch, h, s), ref.allocate(DType.FLOAT32, slots, batch, h, s));
        test.innerForward(in.t(), out.t(), ck.t(), interval, null);
        ref.innerForward(in.r(), out.r(), ck.r(), interval, null);
        Pair dOut = random(0, 1, batch, seqLen, cfg.hidden());
        Grads g = innerGrads(cfg, batch, seqLen);
        test.innerBackward(in.t(), ck.t(), interval, dOut.t(), g.t());
        ref.innerBackward(in.r(), ck.r(), interval, dOut.r(), g.r());
        compareGrads("innerForward+Backward " + type + " c=" + interval, g);
    }

    /** The inner-backward benchmark's own problem (InnerProblem, same seed on both backends). */
    void checkInnerProblem(ModelConfig cfg, int batch, int seqLen, int interval) {
        long seed = rnd.nextLong();
        InnerProblem t = new InnerProblem(test, cfg, batch, seqLen, seed, true, interval);
        InnerProblem r = new InnerProblem(ref, cfg, batch, seqLen, seed, true, interval);
        for (Tensor x : named(t.gradients()).values()) test.fill(x, Float.NaN);
        t.backward();
        r.backward();
        Map<String, Tensor> tg = named(t.gradients());
        Map<String, Tensor> rg = named(r.gradients());
        for (String name : tg.keySet()) {
            compare("InnerProblem backward " + cfg.tttType().flag() + " c=" + interval + " " + name.replace(" (+=)", ""),
                    Kind.SCAN, tg.get(name), rg.get(name));
        }
    }

    // ---------------------------------------------------------------- training step

    /**
     * The same weights, off their trivial init, on the tested backend and (unless {@code testOnly})
     * the reference, as Verifier.checkModel draws them.
     */
    private Parameters[] weights(ModelConfig cfg, boolean testOnly) {
        List<ParameterSpec> specs = ParameterSpec.model(cfg);
        Parameters tw = new Parameters(test, specs);
        Parameters rw = testOnly ? null : new Parameters(ref, specs);
        for (ParameterSpec s : specs) {
            float[] host = switch (s.init()) {
                case NORMAL -> normal(s.size(), 0, 0.02);
                case ONE -> normal(s.size(), 1, 0.1);
                case ZERO -> normal(s.size(), 0, 0.05);
            };
            if (s.name().endsWith("learnable_token_idx")) host[Math.min(1, host.length - 1)] = -2f;
            test.upload(host, tw.get(s.name()));
            if (rw != null) ref.upload(host, rw.get(s.name()));
        }
        return new Parameters[] {tw, rw};
    }

    /**
     * The whole training step (forward, then the gradient of sum(logits) for every parameter),
     * one row per parameter (layers together: the largest error over them).
     */
    void checkModel(ModelConfig cfg, int batch, int seqLen, int interval) {
        Parameters[] w = weights(cfg, false);
        int[] ids = new int[batch * seqLen];
        for (int i = 0; i < ids.length; i++) ids[i] = rnd.nextInt(cfg.vocab());
        TttModel t = new TttModel(test, cfg, w[0], ids, batch, seqLen, true, interval);
        TttModel r = new TttModel(ref, cfg, w[1], ids, batch, seqLen, true, interval);
        seed(t);
        seed(r);
        for (Tensor g : t.gradients().byName().values()) test.fill(g, Float.NaN);
        t.forward();
        t.backward();
        r.forward();
        r.backward();
        test.synchronize();
        Map<String, Double> worst = new LinkedHashMap<>();
        for (String name : t.gradients().byName().keySet()) {
            double e = Verifier.relativeError(test.download(t.gradients().get(name)), ref.download(r.gradients().get(name)));
            String kind = name.replaceFirst("layers\\.\\d+\\.", "layers.*.");
            worst.merge(kind, e, (a, b) -> Double.isNaN(a) || Double.isNaN(b) ? Double.NaN : Math.max(a, b));
        }
        String label = "training step " + cfg.tttType().flag() + " c=" + interval + " ";
        for (Map.Entry<String, Double> e : worst.entrySet()) {
            add(new Row(label + "grad " + e.getKey(), dtype, e.getValue(), gradientTolerance(e.getKey())));
        }
    }

    /**
     * A whole model's gradient: the forward's tolerance in float32; in 16-bit storage the
     * project's standard for reduced-precision gradients ({@link Validator#tolerance}: long chains
     * of stored intermediates lose more than the forward does, and the lr bias, a sum of nearly
     * cancelling terms, is reported but not judged).
     */
    /**
     * In float16 the training step's seed gradient is 1/256 instead of 1, as loss scaling does: at
     * 125m and 64 tokens the gradients of sum(logits) reach 1.5e4 in the CPU reference and pass 65504
     * on the GPU, whose sums round differently; scaled, they are compared instead of overflowing.
     */
    private void seed(TttModel m) {
        if (dtype == DType.FLOAT16) m.seedGradient(FLOAT16_SEED);
    }

    private static final float FLOAT16_SEED = 1f / 256;

    /**
     * The validator's tolerances, and one more gradient reported but not judged in 16-bit storage:
     * learnable_token_idx, like the learning-rate bias a sum over every token of nearly cancelling
     * terms (bfloat16 on an H100: 6.2e-2 at 125m, 1.4e-1 at 125m-h32, while every other gradient is
     * within 1e-1); in float32 it is judged with the others (about 1e-6).
     */
    private double gradientTolerance(String name) {
        if (dtype == DType.FLOAT32) return Verifier.tolerance(Kind.MODEL, dtype, tf32);
        if (name.endsWith("learnable_token_idx")) return Double.POSITIVE_INFINITY;
        return Validator.tolerance(dtype, "grad." + name);
    }

    // ---------------------------------------------------------------- intervals and determinism

    /** Every gradient of an InnerProblem backward, downloaded, in a fixed order. */
    private List<float[]> innerProblemGradients(ModelConfig cfg, int batch, int seqLen, long seed, int interval) {
        InnerProblem p = new InnerProblem(test, cfg, batch, seqLen, seed, true, interval);
        p.backward();
        test.synchronize();
        List<float[]> out = new ArrayList<>();
        for (Tensor g : named(p.gradients()).values()) out.add(test.download(g));
        return out;
    }

    /** Every parameter gradient of a training step, by name. */
    private Map<String, float[]> modelGradients(ModelConfig cfg, Parameters weights, int[] ids, int batch, int seqLen,
            int interval) {
        TttModel m = new TttModel(test, cfg, weights, ids, batch, seqLen, true, interval);
        seed(m);
        m.forward();
        m.backward();
        test.synchronize();
        Map<String, float[]> out = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> g : m.gradients().byName().entrySet()) out.put(g.getKey(), test.download(g.getValue()));
        return out;
    }

    /**
     * The gradients judged against the CPU reference, which are the ones judged across intervals: in
     * 16-bit storage the nearly cancelling sums (learning-rate bias, token index) are reported only,
     * and two intervals round them as differently as GPU and CPU do.
     */
    private List<float[]> judged(Map<String, float[]> grads) {
        List<float[]> out = new ArrayList<>();
        for (Map.Entry<String, float[]> g : grads.entrySet()) {
            if (Double.isFinite(gradientTolerance(g.getKey().replaceFirst("layers\\.\\d+\\.", "layers.*.")))) {
                out.add(g.getValue());
            }
        }
        return out;
    }

    /** Largest relative error of any of {@code xs} against the matching {@code refs}. */
    private static double worstError(List<float[]> xs, List<float[]> refs) {
        double worst = 0;
        for (int i = 0; i < xs.size(); i++) {
            double e = Verifier.relativeError(xs.get(i), refs.get(i));
            if (Double.isNaN(e)) return Double.NaN;
            worst = Math.max(worst, e);
        }
        return worst;
    }

    private static boolean sameBits(List<float[]> a, List<float[]> b) {
        for (int i = 0; i < a.size(); i++) {
            float[] x = a.get(i);
            float[] y = b.get(i);
            if (x.length != y.length) return false;
            for (int j = 0; j < x.length; j++) {
                if (Float.floatToRawIntBits(x[j]) != Float.floatToRawIntBits(y[j])) return false;
            }
        }
        return true;
    }

    /**
     * On the tested backend alone: the gradients of the inner-backward problem and of the training
     * step at every interval of {@link #INTERVALS} against those at c = 1 (the states a segment
     * recomputes may differ from the forward's in the last bits, so the rows allow rounding), and a
     * second run at c = 1 and c = 4 against the first, which must match bit for bit.
     */
    void checkIntervalsAndDeterminism(ModelConfig cfg, int batch, int seqLen) {
        String type = cfg.tttType().flag();
        long seed = rnd.nextLong();
        List<float[]> base = innerProblemGradients(cfg, batch, seqLen, seed, 1);
        for (int c : INTERVALS) {
            if (c == 1) continue;
            add(new Row("InnerProblem grads " + type + " c=" + c + " vs c=1", dtype,
                    worstError(innerProblemGradients(cfg, batch, seqLen, seed, c), base), intervalTolerance(Kind.SCAN)));
        }
        for (int c : new int[] {1, 4}) {
            List<float[]> first = c == 1 ? base : innerProblemGradients(cfg, batch, seqLen, seed, c);
            List<float[]> again = innerProblemGradients(cfg, batch, seqLen, seed, c);
            add(new Row("InnerProblem grads " + type + " c=" + c + " rerun, bit-identical", dtype,
                    sameBits(first, again) ? 0 : Double.NaN, 0));
        }

        // float16 ends at 65504, and the gradients of sum(logits) over a vocabulary of 32000 pass it
        // within a few hundred tokens (layer 0's at 256 tokens of 12m; the CPU reference overflows the
        // same way), so in float16 the training step walks 4 mini-batches: still every interval's
        // segments and recomputation, with finite gradients to compare.
        int modelLen = dtype == DType.FLOAT16 ? Math.min(seqLen, 4 * cfg.miniBatch()) : seqLen;
        String tokens = modelLen == seqLen ? "" : " (" + modelLen + " tokens)";
        Parameters weights = weights(cfg, true)[0];
        int[] ids = new int[batch * modelLen];
        for (int i = 0; i < ids.length; i++) ids[i] = rnd.nextInt(cfg.vocab());
        Map<String, float[]> modelBase = modelGradients(cfg, weights, ids, batch, modelLen, 1);
        for (int c : INTERVALS) {
            if (c == 1) continue;
            add(new Row("training step grads " + type + " c=" + c + " vs c=1" + tokens, dtype,
                    worstError(judged(modelGradients(cfg, weights, ids, batch, modelLen, c)), judged(modelBase)),
                    intervalTolerance(Kind.MODEL)));
        }
        add(new Row("training step grads " + type + " c=1 rerun, bit-identical" + tokens, dtype,
                sameBits(List.copyOf(modelBase.values()), List.copyOf(modelGradients(cfg, weights, ids, batch, modelLen, 1).values()))
                        ? 0 : Double.NaN, 0));
    }

    /**
     * Gradients at two intervals come from two algorithms (at interval 1 a parallel form, above it a
     * walk that recomputes states), which sum in different orders; through a chain of mini-batches
     * that reaches about 1e-5 in float32 (TTT-MLP, 12m), so a scan's float32 tolerance against
     * float64 applies. In 16-bit storage a last-bit difference of a float32 state flips the
     * rounding of a stored output, and the flip travels through the layers as a GPU-versus-CPU
     * difference does, so the forward's tolerance for that kind of work applies.
     */
    private double intervalTolerance(Kind kind) {
        return dtype == DType.FLOAT32 ? Verifier.tolerance(Kind.SCAN, dtype, tf32) : Verifier.tolerance(kind, dtype, tf32);
    }

    static String describe(List<Row> rows) {
        long failed = rows.stream().filter(r -> !r.passed()).count();
        return String.format(Locale.ROOT, "%d of %d backward comparisons passed", rows.size() - failed, rows.size());
    }
}
