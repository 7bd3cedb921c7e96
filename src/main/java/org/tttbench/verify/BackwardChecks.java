package org.tttbench.verify;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.tttbench.backend.Backend;
import org.tttbench.backend.InnerGrads;
import org.tttbench.backend.KernelChoice;
import org.tttbench.backend.ScanShape;
import org.tttbench.backend.Tensor;
import org.tttbench.backend.TokenIds;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.model.InnerProblem;
import org.tttbench.model.Parameters;
import org.tttbench.model.TttModel;
import org.tttbench.validate.RelativeError;
import org.tttbench.validate.Tolerances.Kind;
import org.tttbench.verify.Fixtures.Grads;
import org.tttbench.verify.Fixtures.Inner;
import org.tttbench.verify.Fixtures.Pair;
import org.tttbench.verify.Fixtures.Start;
import org.tttbench.verify.Fixtures.Weights;

/**
 * The backward checks, as {@link ForwardChecks} does the forward: every backward op on random
 * inputs, the inner-loop backward with every kernel the backend can run, the inner-backward
 * benchmark's own problem and the whole training step (every parameter's gradient). Outputs that
 * an op overwrites are poisoned; gradients it accumulates are checked from zero and from random
 * values ({@link Start}).
 *
 * <p>Two checks compare the tested backend with itself: gradients do not depend on the checkpoint
 * interval beyond rounding, and the same inputs give the same bits on a second run.
 */
final class BackwardChecks extends Comparison {

    /** Checkpoint intervals whose gradients must agree (SPEC §4). */
    static final int[] INTERVALS = {1, 2, 4, 8, 16};

    /**
     * In float16 the training step's seed gradient is 1/256 instead of 1, as loss scaling does: at
     * 125m and 64 tokens the gradients of sum(logits) reach 1.5e4 in the CPU reference and pass 65504
     * on the GPU, whose sums round differently; scaled, they are compared instead of overflowing.
     */
    static final float FLOAT16_SEED = 1f / 256;

    BackwardChecks(Pass pass, long seed) {
        super(pass, seed);
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
        int[] ids = fx.tokens(tokens, vocab);
        TokenIds ti = test.uploadIds(ids, batch, seqLen);
        TokenIds ri = ref.uploadIds(ids, batch, seqLen);
        Pair dOut = fx.random(0, 1, tokens, d);
        for (Start s : Start.values()) {
            Pair dTable = fx.start(s, 0.1, vocab, d);
            test.embeddingBackward(ti, dOut.t(), dTable.t());
            ref.embeddingBackward(ri, dOut.r(), dTable.r());
            compare("embeddingBackward dTable += " + s.label, Kind.REDUCE, dTable);
        }

        // The reference's own saved statistics on both sides: the op under test is the backward.
        Pair x = fx.random(0, 1, tokens, d);
        Pair gain = fx.random(1, 0.1, d);
        Tensor refRstd = ref.allocate(DType.FLOAT32, tokens);
        ref.rmsNorm(x.r(), gain.r(), ref.allocate(tokens, d), refRstd);
        Pair rstd = fx.float32Input(ref.download(refRstd), tokens);
        Pair dy = fx.random(0, 1, tokens, d);
        for (Start s : Start.values()) {
            Pair dx = fx.start(s, 1, tokens, d);
            Pair dGain = fx.start(s, 0.1, d);
            test.rmsNormBackward(x.t(), gain.t(), rstd.t(), dy.t(), dx.t(), dGain.t());
            ref.rmsNormBackward(x.r(), gain.r(), rstd.r(), dy.r(), dx.r(), dGain.r());
            compare("rmsNormBackward dx += " + s.label, Kind.REDUCE, dx);
            compare("rmsNormBackward dGain += " + s.label, Kind.REDUCE, dGain);
        }

        Pair lnIn = fx.shiftedRows(tokens, d);
        Pair lnW = fx.random(1, 0.1, d);
        Pair lnB = fx.random(0, 0.1, d);
        Tensor refMean = ref.allocate(DType.FLOAT32, tokens);
        Tensor refLnRstd = ref.allocate(DType.FLOAT32, tokens);
        ref.layerNorm(lnIn.r(), lnW.r(), lnB.r(), ref.allocate(tokens, d), refMean, refLnRstd);
        Pair mean = fx.float32Input(ref.download(refMean), tokens);
        Pair lnRstd = fx.float32Input(ref.download(refLnRstd), tokens);
        Pair lnDy = fx.random(0, 1, tokens, d);
        for (Start s : Start.values()) {
            Pair lnDx = fx.output(tokens, d);
            Pair lnDw = fx.start(s, 0.1, d);
            Pair lnDb = fx.start(s, 0.1, d);
            test.layerNormBackward(lnIn.t(), lnW.t(), mean.t(), lnRstd.t(), lnDy.t(), lnDx.t(), lnDw.t(), lnDb.t());
            ref.layerNormBackward(lnIn.r(), lnW.r(), mean.r(), lnRstd.r(), lnDy.r(), lnDx.r(), lnDw.r(), lnDb.r());
            compare("layerNormBackward dx (weights " + s.label + ")", Kind.REDUCE, lnDx);
            compare("layerNormBackward dWeight += " + s.label, Kind.REDUCE, lnDw);
            compare("layerNormBackward dBias += " + s.label, Kind.REDUCE, lnDb);
        }

        for (boolean rope : new boolean[] {true, false}) {
            Pair dHeads = fx.random(0, 1, batch, h, seqLen, f);
            Pair dSplit = fx.output(tokens, d);
            test.splitHeadsBackward(dHeads.t(), dSplit.t(), h, k, rope);
            ref.splitHeadsBackward(dHeads.r(), dSplit.r(), h, k, rope);
            compare(rope ? "splitHeadsBackward + RoPE" : "splitHeadsBackward", rope ? Kind.ELEMENT : Kind.EXACT, dSplit);
        }

        // The saved learning rates as the run stores them.
        Pair[] lrWeights = fx.learningRateWeights(h, d);
        Tensor refLr = ref.allocate(batch, h, seqLen);
        ref.tttLearningRate(x.r(), lrWeights[0].r(), lrWeights[1].r(), refLr);
        Pair lr = fx.input(ref.download(refLr), batch, h, seqLen);
        Pair dLr = fx.random(0, 1, batch, h, seqLen);
        for (Start s : Start.values()) {
            Pair lrDx = fx.start(s, 1, tokens, d);
            Pair lrDw = fx.start(s, 0.1, h, 1, d);
            Pair lrDb = fx.start(s, 0.1, h, 1);
            test.tttLearningRateBackward(x.t(), lrWeights[0].t(), lr.t(), dLr.t(), lrDx.t(), lrDw.t(), lrDb.t());
            ref.tttLearningRateBackward(x.r(), lrWeights[0].r(), lr.r(), dLr.r(), lrDx.r(), lrDw.r(), lrDb.r());
            compare("tttLearningRateBackward dx += " + s.label, Kind.REDUCE, lrDx);
            compare("tttLearningRateBackward dWeight += " + s.label, Kind.REDUCE, lrDw);
            compare("tttLearningRateBackward dBias += " + s.label, Kind.REDUCE, lrDb);
        }

        Pair tokenIdx = fx.tokenIndex(k);
        Pair dTok = fx.random(0, 1, k);
        for (Start s : Start.values()) {
            Pair dTokenIdx = fx.start(s, 0.1, k);
            test.tokenEtaBackward(tokenIdx.t(), dTok.t(), dTokenIdx.t());
            ref.tokenEtaBackward(tokenIdx.r(), dTok.r(), dTokenIdx.r());
            compare("tokenEtaBackward += " + s.label, Kind.ELEMENT, dTokenIdx);
        }

        Pair gate = fx.random(0, 2, tokens, ffn);
        Pair up = fx.random(0, 1, tokens, ffn);
        Pair dSwi = fx.random(0, 1, tokens, ffn);
        Pair dGate = fx.output(tokens, ffn);
        Pair dUp = fx.output(tokens, ffn);
        test.swigluBackward(gate.t(), up.t(), dSwi.t(), dGate.t(), dUp.t());
        ref.swigluBackward(gate.r(), up.r(), dSwi.r(), dGate.r(), dUp.r());
        compare("swigluBackward dGate", Kind.ELEMENT, dGate);
        compare("swigluBackward dUp", Kind.ELEMENT, dUp);
    }

    // ---------------------------------------------------------------- inner loop

    private static Map<String, Tensor> named(InnerGrads g) {
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put("dXQ", g.xq());
        m.put("dXK", g.xk());
        m.put("dXV", g.xv());
        m.put("dlr", g.lr());
        m.put("dtok", g.tok());
        m.put("dW1", g.w1());
        m.put("db1", g.b1());
        if (g.w2() != null) m.put("dW2", g.w2());
        if (g.b2() != null) m.put("db2", g.b2());
        m.put("dγ", g.normWeight());
        m.put("dβ", g.normBias());
        return m;
    }

    private void compareGrads(String prefix, InnerGrads t, InnerGrads r) {
        Map<String, Tensor> tg = named(t);
        Map<String, Tensor> rg = named(r);
        for (String name : tg.keySet()) compare(prefix + " " + name, Kind.SCAN, tg.get(name), rg.get(name));
    }

    /**
     * The inner backward on random inputs and a random dOut, at checkpoint intervals 1 and 3 (a
     * last segment shorter than the others when there are 4 or more mini-batches), once with
     * every backward kernel the checked backend can run at that shape, its parameter gradients from
     * zero and from random values. The checkpoints are the reference forward's, uploaded to both, so
     * the rows judge the backward alone; one more run uses the tested backend's own forward.
     */
    void checkInner(ModelConfig cfg, int batch, int seqLen) {
        String type = cfg.tttType().flag();
        int h = cfg.heads();
        int s = cfg.innerStateSize();
        int n = seqLen / cfg.miniBatch();
        Inner in = fx.innerInputs(cfg, batch, seqLen);
        for (int interval : new int[] {1, 3}) {
            int slots = (n + interval - 1) / interval;
            Tensor refCk = ref.allocate(DType.FLOAT32, slots, batch, h, s);
            ref.innerForward(in.r(), ref.allocate(batch, seqLen, cfg.hidden()), refCk, interval, null);
            float[] ck = ref.download(refCk);
            Pair dOut = fx.random(0, 1, batch, seqLen, cfg.hidden());
            for (KernelChoice kernel : options(ScanShape.of(in.t(), storage, interval))) {
                String tag = kernel.backward() == null ? "" : " [" + kernel.backward() + "]";
                for (Start start : Start.values()) {
                    Grads g = fx.innerGrads(cfg, batch, seqLen, start);
                    Tensor testCk = test.allocate(DType.FLOAT32, slots, batch, h, s);
                    test.upload(ck, testCk);
                    test.force(kernel);
                    try {
                        test.innerBackward(in.t(), testCk, interval, dOut.t(), g.t());
                    } finally {
                        test.force(KernelChoice.OWN);
                    }
                    ref.innerBackward(in.r(), refCk, interval, dOut.r(), g.r());
                    compareGrads("innerBackward " + type + " c=" + interval + tag + " (+= " + start.label + ")", g.t(),
                            g.r());
                }
            }
        }
        // The tested backend's own forward writes the checkpoints its backward reads.
        int interval = 2;
        int slots = (n + interval - 1) / interval;
        Pair out = fx.output(batch, seqLen, cfg.hidden());
        Pair ck = fx.float32Output(slots, batch, h, s);
        test.innerForward(in.t(), out.t(), ck.t(), interval, null);
        ref.innerForward(in.r(), out.r(), ck.r(), interval, null);
        Pair dOut = fx.random(0, 1, batch, seqLen, cfg.hidden());
        Grads g = fx.innerGrads(cfg, batch, seqLen, Start.RANDOM);
        test.innerBackward(in.t(), ck.t(), interval, dOut.t(), g.t());
        ref.innerBackward(in.r(), ck.r(), interval, dOut.r(), g.r());
        compareGrads("innerForward+Backward " + type + " c=" + interval, g.t(), g.r());
    }

    /** Every backward kernel the checked backend can run at {@code shape}; its own choice where it has none. */
    private List<KernelChoice> options(ScanShape shape) {
        List<KernelChoice> all = pass.subject().kernelOptions(shape).stream().filter(c -> c.backward() != null).toList();
        return all.isEmpty() ? List.of(KernelChoice.OWN) : all;
    }

    /** The inner-backward benchmark's own problem (InnerProblem, same seed on both backends). */
    void checkInnerProblem(ModelConfig cfg, int batch, int seqLen, int interval) {
        long seed = fx.nextSeed();
        InnerProblem t = problem(test, cfg, batch, seqLen, seed, interval);
        InnerProblem r = problem(ref, cfg, batch, seqLen, seed, interval);
        for (Tensor x : named(t.gradients()).values()) test.fill(x, Float.NaN);
        t.backward();
        r.backward();
        compareGrads("InnerProblem backward " + cfg.tttType().flag() + " c=" + interval, t.gradients(), r.gradients());
    }

    private InnerProblem problem(Backend be, ModelConfig cfg, int batch, int seqLen, long seed, int interval) {
        InnerProblem p = new InnerProblem(be, cfg, batch, seqLen, seed, true, interval);
        fx.roundInputs(be, p);
        return p;
    }

    // ---------------------------------------------------------------- training step

    /** The training step's seed gradient: 1, or in float16 storage {@link #FLOAT16_SEED}. */
    private void seed(TttModel m) {
        if (storage == DType.FLOAT16) m.seedGradient(FLOAT16_SEED);
    }

    /**
     * The whole training step (forward, then the gradient of sum(logits) for every parameter), one
     * row per parameter (layers together: the layer furthest over its tolerance).
     */
    void checkModel(ModelConfig cfg, int batch, int seqLen, int interval) {
        test.runReleasing(() -> {
            Weights w = fx.weights(cfg);
            int[] ids = fx.tokens(batch * seqLen, cfg.vocab());
            TttModel t = new TttModel(test, cfg, w.t(), ids, batch, seqLen, true, interval);
            TttModel r = new TttModel(ref, cfg, w.r(), ids, batch, seqLen, true, interval);
            seed(t);
            seed(r);
            for (Tensor g : t.gradients().byName().values()) test.fill(g, Float.NaN);
            t.forward();
            t.backward();
            r.forward();
            r.backward();
            test.synchronize();
            String label = "training step " + cfg.tttType().flag() + " c=" + interval + " grad ";
            Map<String, List<Row>> byKind = new LinkedHashMap<>();
            for (String name : t.gradients().byName().keySet()) {
                Kind kind = name.endsWith("learnable_token_idx") || name.endsWith("learnable_ttt_lr_bias")
                        ? Kind.CANCELLING : Kind.MODEL;
                Row row = judge(label + name, kind, test.download(t.gradients().get(name)),
                        ref.download(r.gradients().get(name)));
                byKind.computeIfAbsent(layersTogether(name), x -> new ArrayList<>()).add(row);
            }
            byKind.forEach((kind, rows) -> add(Row.worst(label + kind, rows)));
        });
    }

    private static String layersTogether(String name) {
        return name.replaceFirst("layers\\.\\d+\\.", "layers.*.");
    }

    // ---------------------------------------------------------------- intervals and determinism

    /** Every gradient of an InnerProblem backward on {@code be}, downloaded, by name. */
    private Map<String, float[]> innerProblemGradients(Backend be, ModelConfig cfg, int batch, int seqLen, long seed,
            int interval) {
        Map<String, float[]> out = new LinkedHashMap<>();
        be.runReleasing(() -> {
            InnerProblem p = problem(be, cfg, batch, seqLen, seed, interval);
            p.backward();
            be.synchronize();
            named(p.gradients()).forEach((name, g) -> out.put(name, be.download(g)));
        });
        return out;
    }

    /** Every parameter gradient of a training step on {@code be}, by name. */
    private Map<String, float[]> modelGradients(Backend be, ModelConfig cfg, Parameters weights, int[] ids, int batch,
            int seqLen, int interval) {
        Map<String, float[]> out = new LinkedHashMap<>();
        be.runReleasing(() -> {
            TttModel m = new TttModel(be, cfg, weights, ids, batch, seqLen, true, interval);
            seed(m);
            m.forward();
            m.backward();
            be.synchronize();
            m.gradients().byName().forEach((name, g) -> out.put(name, be.download(g)));
        });
        return out;
    }

    /**
     * The tolerance of each gradient's difference between two intervals on the tested backend: a
     * scan's against the reference (float32's; in 16-bit storage derived from the reference's spread
     * at c = 1, {@code refBase}: a last-bit difference of a float32 state flips the rounding of a
     * stored output, and the flip travels as a GPU-versus-CPU difference does).
     */
    private Map<String, Double> intervalTolerances(String basis, Map<String, float[]> base, Map<String, float[]> refBase) {
        Map<String, Double> out = new LinkedHashMap<>();
        for (String name : base.keySet()) {
            out.put(name, tolerance(basis + name, Kind.SCAN, refBase == null ? null : refBase.get(name)));
        }
        return out;
    }

    /** Gradients at one interval against those at c = 1, the gradient furthest over its tolerance reported. */
    private Row intervalRow(String op, Map<String, float[]> grads, Map<String, float[]> base,
            Map<String, Double> tolerances) {
        List<Row> rows = new ArrayList<>();
        for (String name : grads.keySet()) {
            rows.add(new Row(op, dtype, RelativeError.of(grads.get(name), base.get(name)), tolerances.get(name)));
        }
        return Row.worst(op, rows);
    }

    private static boolean sameBits(Map<String, float[]> a, Map<String, float[]> b) {
        for (String name : a.keySet()) {
            float[] x = a.get(name);
            float[] y = b.get(name);
            if (y == null || x.length != y.length) return false;
            for (int j = 0; j < x.length; j++) {
                if (Float.floatToRawIntBits(x[j]) != Float.floatToRawIntBits(y[j])) return false;
            }
        }
        return true;
    }

    private Row bitIdentical(String op, Map<String, float[]> a, Map<String, float[]> b) {
        return new Row(op, dtype, sameBits(a, b) ? 0 : Double.NaN, 0);
    }

    /**
     * On the tested backend alone: the gradients of the inner-backward problem and of the training
     * step at every interval of {@link #INTERVALS} against those at c = 1 (the states a segment
     * recomputes may differ from the forward's in the last bits, so the rows allow rounding), and a
     * second run at c = 1 and c = 4 against the first, which must match bit for bit. Tolerances that
     * derive from the reference's spread run the reference once at c = 1.
     */
    void checkIntervalsAndDeterminism(ModelConfig cfg, int batch, int seqLen) {
        String type = cfg.tttType().flag();
        long seed = fx.nextSeed();
        Map<String, float[]> base = innerProblemGradients(test, cfg, batch, seqLen, seed, 1);
        Map<String, Double> tolerances = intervalTolerances("InnerProblem " + type + " c=1 reference grad ", base,
                derivesTolerances() ? innerProblemGradients(ref, cfg, batch, seqLen, seed, 1) : null);
        for (int c : INTERVALS) {
            if (c == 1) continue;
            add(intervalRow("InnerProblem grads " + type + " c=" + c + " vs c=1",
                    innerProblemGradients(test, cfg, batch, seqLen, seed, c), base, tolerances));
        }
        for (int c : new int[] {1, 4}) {
            Map<String, float[]> first = c == 1 ? base : innerProblemGradients(test, cfg, batch, seqLen, seed, c);
            add(bitIdentical("InnerProblem grads " + type + " c=" + c + " rerun, bit-identical", first,
                    innerProblemGradients(test, cfg, batch, seqLen, seed, c)));
        }

        // float16 ends at 65504, and the gradients of sum(logits) over a vocabulary of 32000 pass it
        // within a few hundred tokens (layer 0's at 256 tokens of 12m; the CPU reference overflows the
        // same way), so in float16 the training step walks 4 mini-batches: still every interval's
        // segments and recomputation, with finite gradients to compare.
        int modelLen = storage == DType.FLOAT16 ? Math.min(seqLen, 4 * cfg.miniBatch()) : seqLen;
        String tokens = modelLen == seqLen ? "" : " (" + modelLen + " tokens)";
        test.runReleasing(() -> intervalsOfTheTrainingStep(cfg, batch, modelLen, tokens, type));
    }

    /** The training step's part of {@link #checkIntervalsAndDeterminism}. */
    private void intervalsOfTheTrainingStep(ModelConfig cfg, int batch, int modelLen, String tokens, String type) {
        Weights w = fx.weights(cfg);
        int[] ids = fx.tokens(batch * modelLen, cfg.vocab());
        Map<String, float[]> modelBase = modelGradients(test, cfg, w.t(), ids, batch, modelLen, 1);
        Map<String, Double> modelTolerances = intervalTolerances("training step " + type + " c=1 reference grad ",
                modelBase, derivesTolerances() ? modelGradients(ref, cfg, w.r(), ids, batch, modelLen, 1) : null);
        for (int c : INTERVALS) {
            if (c == 1) continue;
            add(intervalRow("training step grads " + type + " c=" + c + " vs c=1" + tokens,
                    modelGradients(test, cfg, w.t(), ids, batch, modelLen, c), modelBase, modelTolerances));
        }
        add(bitIdentical("training step grads " + type + " c=1 rerun, bit-identical" + tokens, modelBase,
                modelGradients(test, cfg, w.t(), ids, batch, modelLen, 1)));
    }
}
