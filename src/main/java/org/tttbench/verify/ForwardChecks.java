package org.tttbench.verify;

import java.util.ArrayList;
import java.util.List;
import org.tttbench.backend.KernelChoice;
import org.tttbench.backend.ScanShape;
import org.tttbench.backend.Tensor;
import org.tttbench.backend.TokenIds;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.model.InnerProblem;
import org.tttbench.model.TttModel;
import org.tttbench.validate.Tolerances.Kind;
import org.tttbench.verify.Fixtures.Inner;
import org.tttbench.verify.Fixtures.Pair;
import org.tttbench.verify.Fixtures.Start;
import org.tttbench.verify.Fixtures.Weights;

/**
 * The forward checks: every forward op on random inputs, the inner scan with every kernel the
 * backend can run, the inner-forward benchmark's problem and the whole model forward.
 */
final class ForwardChecks extends Comparison {

    ForwardChecks(Pass pass, long seed) {
        super(pass, seed);
    }

    /** Every forward op that does not depend on the inner model, at the shapes of {@code cfg}. */
    void checkOps(ModelConfig cfg, int batch, int seqLen) {
        int tokens = batch * seqLen;
        int d = cfg.hidden();
        int h = cfg.heads();
        int f = cfg.headDim();
        int ffn = cfg.ffn();
        int k = cfg.miniBatch();
        int v = cfg.vocab();

        Pair filled = fx.output(tokens, d);
        float value = (float) fx.gaussian();
        test.fill(filled.t(), value);
        ref.fill(filled.r(), value);
        compare("fill", Kind.EXACT, filled);

        Pair a = fx.random(0, 1, tokens, d);
        Pair b = fx.random(0, 1, tokens, d);
        Pair sum = fx.output(tokens, d);
        test.add(a.t(), b.t(), sum.t());
        ref.add(a.r(), b.r(), sum.r());
        compare("add", Kind.ELEMENT, sum);
        // In place, as the residual stream is updated.
        test.add(a.t(), b.t(), a.t());
        ref.add(a.r(), b.r(), a.r());
        compare("add (in place)", Kind.ELEMENT, a);

        Pair x = fx.random(0, 1, tokens, d);
        Pair w = fx.random(0, 0.02, d, d);
        matmul("matmul x·Wᵀ [T,D]×[D,D]", x, w, fx.output(tokens, d), tokens, d, d, false, true, false);
        Pair gw = fx.random(0, 0.02, ffn, d);
        Pair gy = fx.output(tokens, ffn);
        matmul("matmul x·Wᵀ [T,D]×[I,D]", x, gw, gy, tokens, ffn, d, false, true, false);
        Pair dw = fx.random(0, 0.02, d, ffn);
        matmul("matmul x·Wᵀ [T,I]×[D,I]", gy, dw, fx.output(tokens, d), tokens, d, ffn, false, true, false);
        Pair embed = fx.random(0, 0.02, v, d);
        matmul("matmul x·Eᵀ [T,D]×[V,D]", x, embed, fx.output(tokens, v), tokens, v, d, false, true, false);
        // Odd sizes and every transpose, accumulating: a wrong leading dimension or swap shows. k = 48 as well,
        // which a product split along k divides.
        for (int kk : new int[] {29, 48}) {
            for (boolean ta : new boolean[] {false, true}) {
                for (boolean tb : new boolean[] {false, true}) {
                    int m = 37;
                    int n = 50;
                    Pair pa = fx.random(0, 1, ta ? new int[] {kk, m} : new int[] {m, kk});
                    Pair pb = fx.random(0, 1, tb ? new int[] {n, kk} : new int[] {kk, n});
                    for (Start s : Start.values()) {
                        matmul("matmul " + (ta ? "Aᵀ" : "A") + "·" + (tb ? "Bᵀ" : "B") + " += [37,50," + kk + "] " + s.label,
                                pa, pb, fx.start(s, 1, m, n), m, n, kk, ta, tb, true);
                    }
                }
            }
        }

        checkBatched(tokens, d, ffn);

        int[] ids = fx.tokens(tokens, v);
        TokenIds ti = test.uploadIds(ids, batch, seqLen);
        TokenIds ri = ref.uploadIds(ids, batch, seqLen);
        Pair gathered = fx.output(tokens, d);
        test.embedding(ti, embed.t(), gathered.t());
        ref.embedding(ri, embed.r(), gathered.r());
        compare("embedding", Kind.EXACT, gathered);

        Pair gain = fx.random(1, 0.1, d);
        Pair normed = fx.output(tokens, d);
        Pair rstd = fx.float32Output(tokens);
        test.rmsNorm(x.t(), gain.t(), normed.t(), rstd.t());
        ref.rmsNorm(x.r(), gain.r(), normed.r(), rstd.r());
        compare("rmsNorm out", Kind.REDUCE, normed);
        compare("rmsNorm rstd", Kind.REDUCE, rstd);

        // The residual add and its norm, in place as the model runs it (the sum over the first input).
        Pair res = fx.random(0, 1, tokens, d);
        Pair resIn = fx.random(0, 1, tokens, d);
        Pair resOut = fx.output(tokens, d);
        Pair resRstd = fx.float32Output(tokens);
        test.addRmsNorm(res.t(), resIn.t(), res.t(), gain.t(), resOut.t(), resRstd.t());
        ref.addRmsNorm(res.r(), resIn.r(), res.r(), gain.r(), resOut.r(), resRstd.r());
        compare("addRmsNorm sum (in place)", Kind.ELEMENT, res);
        compare("addRmsNorm out", Kind.REDUCE, resOut);
        compare("addRmsNorm rstd", Kind.REDUCE, resRstd);
        Pair resSum = fx.output(tokens, d);
        test.fill(resOut.t(), Float.NaN);
        test.fill(resRstd.t(), Float.NaN);
        test.addRmsNorm(resIn.t(), x.t(), resSum.t(), gain.t(), resOut.t(), resRstd.t());
        ref.addRmsNorm(resIn.r(), x.r(), resSum.r(), gain.r(), resOut.r(), resRstd.r());
        compare("addRmsNorm sum", Kind.ELEMENT, resSum);
        compare("addRmsNorm out (sum apart)", Kind.REDUCE, resOut);

        Pair lnIn = fx.shiftedRows(tokens, d);
        Pair lnW = fx.random(1, 0.1, d);
        Pair lnB = fx.random(0, 0.1, d);
        Pair lnOut = fx.output(tokens, d);
        Pair mean = fx.float32Output(tokens);
        Pair lnRstd = fx.float32Output(tokens);
        test.layerNorm(lnIn.t(), lnW.t(), lnB.t(), lnOut.t(), mean.t(), lnRstd.t());
        ref.layerNorm(lnIn.r(), lnW.r(), lnB.r(), lnOut.r(), mean.r(), lnRstd.r());
        compare("layerNorm out", Kind.REDUCE, lnOut);
        compare("layerNorm mean", Kind.REDUCE, mean);
        compare("layerNorm rstd", Kind.REDUCE, lnRstd);

        for (boolean rope : new boolean[] {true, false}) {
            Pair heads = fx.output(batch, h, seqLen, f);
            test.splitHeads(x.t(), heads.t(), h, k, rope);
            ref.splitHeads(x.r(), heads.r(), h, k, rope);
            compare(rope ? "splitHeads + RoPE" : "splitHeads", rope ? Kind.ELEMENT : Kind.EXACT, heads);
        }

        Pair[] lrWeights = fx.learningRateWeights(h, d);
        Pair lr = fx.output(batch, h, seqLen);
        test.tttLearningRate(x.t(), lrWeights[0].t(), lrWeights[1].t(), lr.t());
        ref.tttLearningRate(x.r(), lrWeights[0].r(), lrWeights[1].r(), lr.r());
        compare("tttLearningRate", Kind.REDUCE, lr);

        Pair tokenIdx = fx.tokenIndex(k);
        Pair tok = fx.output(k);
        test.tokenEta(tokenIdx.t(), tok.t());
        ref.tokenEta(tokenIdx.r(), tok.r());
        compare("tokenEta", Kind.ELEMENT, tok);

        Pair gate = fx.random(0, 2, tokens, ffn);
        Pair up = fx.random(0, 1, tokens, ffn);
        Pair swi = fx.output(tokens, ffn);
        test.swiglu(gate.t(), up.t(), swi.t());
        ref.swiglu(gate.r(), up.r(), swi.r());
        compare("swiglu", Kind.ELEMENT, swi);
    }

    /**
     * The ops over several tensors at once, on tensors placed back to back (the batched launch)
     * and apart (one launch each), including the model's patterns: Q, K, V and gate, up from one
     * input, and their weight gradients accumulated.
     */
    private void checkBatched(int tokens, int d, int ffn) {
        // Mixed shapes and storage types side by side, one tensor apart, one named twice.
        List<Pair> block = fx.adjacent(List.of(new int[] {d}, new int[] {3, 5, 7}, new int[] {tokens, d}, new int[] {1}),
                true);
        List<Pair> all = new ArrayList<>(block);
        all.add(fx.output(7, 3));
        all.add(fx.float32Output(5));
        all.add(block.get(1));
        for (float value : new float[] {0f, (float) fx.gaussian()}) {
            test.fillAll(all.stream().map(Pair::t).toList(), value);
            ref.fillAll(all.stream().map(Pair::r).toList(), value);
            for (int i = 0; i < all.size() - 1; i++) {
                compare("fillAll " + (value == 0 ? "zero " : "") + "#" + i, Kind.EXACT, all.get(i));
            }
        }

        Pair x = fx.random(0, 1, tokens, d);
        List<int[]> threeSquare = List.of(new int[] {d, d}, new int[] {d, d}, new int[] {d, d});
        List<int[]> threeTokens = List.of(new int[] {tokens, d}, new int[] {tokens, d}, new int[] {tokens, d});
        List<int[]> twoFfn = List.of(new int[] {ffn, d}, new int[] {ffn, d});
        List<int[]> twoTokensFfn = List.of(new int[] {tokens, ffn}, new int[] {tokens, ffn});
        batched("matmulBatched x·W{q,k,v}ᵀ 3×[T,D]×[D,D]", List.of(x), fx.adjacent(threeSquare, false),
                fx.adjacent(threeTokens, true), tokens, d, d, false, true, false);
        Pair y = fx.random(0, 1, tokens, d);
        List<Pair> wgu = fx.adjacent(twoFfn, false);
        batched("matmulBatched y·W{gate,up}ᵀ 2×[T,D]×[I,D]", List.of(y), wgu, fx.adjacent(twoTokensFfn, true), tokens,
                ffn, d, false, true, false);
        // Weight gradients: dW[i] += dY[i]ᵀ x, x shared.
        List<Pair> dy = fx.adjacent(threeTokens, false);
        List<Pair> dgu = fx.adjacent(twoTokensFfn, false);
        for (Start s : Start.values()) {
            batched("matmulBatched dW{q,k,v} += dYᵀ·x 3×[D,T]×[T,D] " + s.label, dy, List.of(x), starts(s, threeSquare),
                    d, d, tokens, true, false, true);
            batched("matmulBatched dW{gate,up} += dYᵀ·y 2×[I,T]×[T,D] " + s.label, dgu, List.of(y), starts(s, twoFfn),
                    ffn, d, tokens, true, false, true);
        }
        // Input gradients: dX = Σ dY[i] W[i], over the adjacent dY and W above, and accumulating.
        List<Pair> wd = fx.adjacent(threeSquare, false);
        sum("matmulSum dX = Σ dY·W{q,k,v} 3×[T,D]×[D,D]", dy, wd, fx.output(tokens, d), tokens, d, d, false, false, false);
        for (Start s : Start.values()) {
            sum("matmulSum dX += Σ dY·W{gate,up} 2×[T,I]×[I,D] " + s.label, dgu, wgu, fx.start(s, 1, tokens, d), tokens,
                    d, ffn, false, false, true);
        }
        // Every transpose at odd sizes, operands at a stride, apart, and shared.
        int m = 37;
        int n = 50;
        int kk = 29;
        List<int[]> threeC = List.of(new int[] {m, n}, new int[] {m, n}, new int[] {m, n});
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                int[] sa = ta ? new int[] {kk, m} : new int[] {m, kk};
                int[] sb = tb ? new int[] {n, kk} : new int[] {kk, n};
                String t = (ta ? "Aᵀ" : "A") + "·" + (tb ? "Bᵀ" : "B");
                List<Pair> pa = fx.adjacent(List.of(sa, sa, sa), false);
                List<Pair> pb = fx.adjacent(List.of(sb, sb, sb), false);
                batched("matmulBatched " + t + " += 3×[37,50,29]", pa, pb, fx.adjacent(threeC, false), m, n, kk, ta, tb,
                        true);
                // Spacers between them, so that no fixed stride holds and each product runs alone.
                Pair c0 = fx.random(0, 1, m, n);
                fx.output(3);
                Pair c1 = fx.random(0, 1, m, n);
                Pair c2 = fx.random(0, 1, m, n);
                Pair a0 = fx.random(0, 1, sa);
                Pair a1 = fx.random(0, 1, sa);
                fx.output(5);
                Pair a2 = fx.random(0, 1, sa);
                batched("matmulBatched " + t + " += 3×[37,50,29] apart, B shared", List.of(a0, a1, a2),
                        List.of(fx.random(0, 1, sb)), List.of(c0, c1, c2), m, n, kk, ta, tb, true);
                sum("matmulSum " + t + " = Σ 3×[37,50,29]", pa, pb, fx.output(m, n), m, n, kk, ta, tb, false);
                sum("matmulSum " + t + " += Σ 3×[37,50,29] apart, B shared", List.of(a0, a1, a2),
                        List.of(fx.random(0, 1, sb)), fx.random(0, 1, m, n), m, n, kk, ta, tb, true);
            }
        }
    }

    /** Accumulated outputs placed back to back, each from {@code s}. */
    private List<Pair> starts(Start s, List<int[]> shapes) {
        List<Pair> out = fx.adjacent(shapes, false);
        if (s == Start.ZERO) {
            test.fillAll(out.stream().map(Pair::t).toList(), 0f);
            ref.fillAll(out.stream().map(Pair::r).toList(), 0f);
        }
        return out;
    }

    private void batched(String op, List<Pair> a, List<Pair> b, List<Pair> c, int m, int n, int k, boolean ta,
            boolean tb, boolean acc) {
        test.matmulBatched(a.stream().map(Pair::t).toList(), b.stream().map(Pair::t).toList(),
                c.stream().map(Pair::t).toList(), m, n, k, ta, tb, acc);
        ref.matmulBatched(a.stream().map(Pair::r).toList(), b.stream().map(Pair::r).toList(),
                c.stream().map(Pair::r).toList(), m, n, k, ta, tb, acc);
        for (int i = 0; i < c.size(); i++) compare(op + " #" + i, Kind.MATMUL, c.get(i));
    }

    private void sum(String op, List<Pair> a, List<Pair> b, Pair c, int m, int n, int k, boolean ta, boolean tb,
            boolean acc) {
        test.matmulSum(a.stream().map(Pair::t).toList(), b.stream().map(Pair::t).toList(), c.t(), m, n, k, ta, tb,
                acc);
        ref.matmulSum(a.stream().map(Pair::r).toList(), b.stream().map(Pair::r).toList(), c.r(), m, n, k, ta, tb, acc);
        compare(op, Kind.MATMUL, c);
    }

    private void matmul(String op, Pair a, Pair b, Pair c, int m, int n, int k, boolean ta, boolean tb, boolean acc) {
        test.matmul(a.t(), b.t(), c.t(), m, n, k, ta, tb, acc);
        ref.matmul(a.r(), b.r(), c.r(), m, n, k, ta, tb, acc);
        compare(op, Kind.MATMUL, c);
    }

    /**
     * The inner scan on random inputs, with checkpoints (interval 2) and the last state, once
     * for every forward kernel the checked backend can run at that shape (state placements,
     * cluster sizes).
     */
    void checkInner(ModelConfig cfg, int batch, int seqLen) {
        int h = cfg.heads();
        Inner in = fx.innerInputs(cfg, batch, seqLen);
        int interval = 2;
        int slots = (seqLen / cfg.miniBatch() + interval - 1) / interval;
        int s = cfg.innerStateSize();

        Tensor refOut = ref.allocate(batch, seqLen, cfg.hidden());
        Tensor refCk = ref.allocate(DType.FLOAT32, slots, batch, h, s);
        Tensor refLast = ref.allocate(DType.FLOAT32, batch, h, s);
        ref.innerForward(in.r(), refOut, refCk, interval, refLast);

        String type = cfg.tttType().flag();
        for (KernelChoice kernel : options(ScanShape.of(in.t(), storage, interval))) {
            String tag = kernel.forward() == null ? "" : " [" + kernel.forward() + "]";
            Pair out = fx.output(batch, seqLen, cfg.hidden());
            Pair ck = fx.float32Output(slots, batch, h, s);
            Pair last = fx.float32Output(batch, h, s);
            test.force(kernel);
            try {
                test.innerForward(in.t(), out.t(), ck.t(), interval, last.t());
            } finally {
                test.force(KernelChoice.OWN);
            }
            compare("innerForward " + type + " out" + tag, Kind.SCAN, out.t(), refOut);
            compare("innerForward " + type + " checkpoints" + tag, Kind.SCAN, ck.t(), refCk);
            compare("innerForward " + type + " last state" + tag, Kind.SCAN, last.t(), refLast);
        }
    }

    /** Every forward kernel the checked backend can run at {@code shape}; its own choice where it has none. */
    private List<KernelChoice> options(ScanShape shape) {
        List<KernelChoice> all = pass.subject().kernelOptions(shape).stream().filter(c -> c.forward() != null).toList();
        return all.isEmpty() ? List.of(KernelChoice.OWN) : all;
    }

    /** The inner-forward benchmark's own problem (InnerProblem, same seed on both backends). */
    void checkInnerProblem(ModelConfig cfg, int batch, int seqLen, int interval) {
        long seed = fx.nextSeed();
        InnerProblem t = new InnerProblem(test, cfg, batch, seqLen, seed, false, interval);
        InnerProblem r = new InnerProblem(ref, cfg, batch, seqLen, seed, false, interval);
        fx.roundInputs(test, t);
        fx.roundInputs(ref, r);
        test.fill(t.out(), Float.NaN);
        t.forward();
        r.forward();
        compare("InnerProblem forward " + cfg.tttType().flag(), Kind.SCAN, t.out(), r.out());
    }

    /**
     * The whole model forward with every parameter off its trivial init, compared on the logits;
     * {@code interval} is the checkpoint interval the scans are told (a benchmark's own).
     */
    void checkModel(ModelConfig cfg, int batch, int seqLen, int interval) {
        test.runReleasing(() -> {
            Weights w = fx.weights(cfg);
            int[] ids = fx.tokens(batch * seqLen, cfg.vocab());
            TttModel t = new TttModel(test, cfg, w.t(), ids, batch, seqLen, false, interval);
            TttModel r = new TttModel(ref, cfg, w.r(), ids, batch, seqLen, false, interval);
            test.fill(t.logits(), Float.NaN);
            t.forward();
            r.forward();
            compare("model forward " + cfg.tttType().flag() + " logits (" + cfg.layers() + " layers)", Kind.MODEL,
                    t.logits(), r.logits());
        });
    }
}
