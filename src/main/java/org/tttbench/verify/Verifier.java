package org.tttbench.verify;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import org.tttbench.backend.Backend;
import org.tttbench.backend.Backends;
import org.tttbench.backend.InnerInputs;
import org.tttbench.backend.Tensor;
import org.tttbench.backend.TokenIds;
import org.tttbench.backend.cpu.CpuBackend;
import org.tttbench.config.BackendKind;
import org.tttbench.config.BenchConfig;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.Preset;
import org.tttbench.config.TttType;
import org.tttbench.gpu.GpuBackend;
import org.tttbench.gpu.InnerPlacement;
import org.tttbench.gpu.InnerVariant;
import org.tttbench.model.InnerProblem;
import org.tttbench.model.ParameterSpec;
import org.tttbench.model.Parameters;
import org.tttbench.model.TttModel;

/**
 * Checks a backend (a GPU's) against the CPU reference backend: every forward op and the whole
 * forward on fresh random inputs (and, through {@link BackwardVerifier}, every backward op and the
 * whole training step), the same host data uploaded to both, each output of the
 * backend under test poisoned with NaN first so that an element it never writes fails. A row
 * per op and dtype gives ‖x − ref‖ / ‖ref‖ against a tolerance set by what the op does and the
 * storage type (the reference runs at the same storage type, so the tolerance covers only
 * float32-versus-float64 arithmetic and the rounding flips it causes).
 */
public final class Verifier extends Comparison {

    /** What an op does, which sets how far its result may stray from the reference. */
    public enum Kind {
        /** Copies values: nothing may differ. */
        EXACT,
        /** One rounding per element after float32 arithmetic. */
        ELEMENT,
        /** Float32 sums over rows (norms, dot products). */
        REDUCE,
        /** Vendor BLAS products. */
        MATMUL,
        /** The inner scan: float32 state carried over all mini-batches. */
        SCAN,
        /** The whole model: every op above, layer after layer. */
        MODEL
    }

    /**
     * The largest accepted relative error. Float32: a few hundred float32 roundings against
     * float64; bfloat16 and float16: an output that rounds the other way costs 2^-8 or 2^-11 of
     * that element, so the norm of the differences stays well under those; a wrong index or a
     * missing term costs order one.
     */
    public static double tolerance(Kind kind, DType dtype, boolean tf32) {
        return switch (dtype) {
            case FLOAT32 -> switch (kind) {
                case EXACT -> 0;
                case ELEMENT -> 1e-6;
                case REDUCE -> 1e-5;
                case MATMUL -> tf32 ? 5e-3 : 2e-5;
                case SCAN -> 1e-4;
                case MODEL -> tf32 ? 2e-2 : 1e-3;
            };
            case BFLOAT16 -> switch (kind) {
                case EXACT -> 0;
                case ELEMENT, REDUCE, MATMUL -> 1e-2;
                case SCAN -> 2e-2;
                case MODEL -> 5e-2;
            };
            case FLOAT16 -> switch (kind) {
                case EXACT -> 0;
                case ELEMENT, REDUCE, MATMUL -> 2e-3;
                case SCAN -> 5e-3;
                case MODEL -> 1e-2;
            };
        };
    }

    /** One comparison. NaN anywhere in the result makes the error NaN, which never passes. */
    public record Row(String op, DType dtype, double error, double tolerance) {
        public boolean passed() {
            return error <= tolerance;
        }

        public String format() {
            return String.format(Locale.ROOT, "%-44s %-9s %10.3e %10.1e  %s", op, dtype.flag(), error, tolerance,
                    passed() ? "PASS" : "FAIL");
        }
    }

    static final String HEADER = String.format(Locale.ROOT, "%-44s %-9s %10s %10s  %s", "op", "dtype", "rel.error",
            "tolerance", "result");

    /**
     * @param test the backend under test
     * @param ref  the reference, a CPU backend with the same storage type
     * @param log  where each row is printed as it is made, or null
     */
    Verifier(Backend test, Backend ref, boolean tf32, long seed, PrintStream log) {
        super(test, ref, tf32, seed, log);
    }

    /** ‖x − ref‖ / ‖ref‖ in float64 (‖x − ref‖ when ref is all zeros); NaN if x holds a NaN or infinity. */
    static double relativeError(float[] x, float[] r) {
        if (x.length != r.length) throw new IllegalArgumentException(x.length + " values against " + r.length);
        double diff = 0;
        double norm = 0;
        for (int i = 0; i < x.length; i++) {
            if (!Float.isFinite(x[i])) {
                // The same infinity as the reference's at the same storage type is agreement: a float16
                // sum that passes 65504 overflows in both (TTT-MLP's token-scale gradient at 125m-h32).
                if (Float.isInfinite(x[i]) && x[i] == r[i]) continue;
                return Double.NaN;
            }
            double d = (double) x[i] - r[i];
            diff += d * d;
            norm += (double) r[i] * r[i];
        }
        return norm == 0 ? Math.sqrt(diff) : Math.sqrt(diff / norm);
    }

    // ---------------------------------------------------------------- the checks

    /** Every forward op that does not depend on the inner model, at the shapes of {@code cfg}. */
    void checkOps(ModelConfig cfg, int batch, int seqLen) {
        int tokens = batch * seqLen;
        int d = cfg.hidden();
        int h = cfg.heads();
        int f = cfg.headDim();
        int ffn = cfg.ffn();
        int k = cfg.miniBatch();
        int v = cfg.vocab();

        Pair filled = output(tokens, d);
        float value = (float) rnd.nextGaussian();
        test.fill(filled.t(), value);
        ref.fill(filled.r(), value);
        compare("fill", Kind.EXACT, filled);

        Pair a = random(0, 1, tokens, d);
        Pair b = random(0, 1, tokens, d);
        Pair sum = output(tokens, d);
        test.add(a.t(), b.t(), sum.t());
        ref.add(a.r(), b.r(), sum.r());
        compare("add", Kind.ELEMENT, sum);
        // In place, as the residual stream is updated.
        test.add(a.t(), b.t(), a.t());
        ref.add(a.r(), b.r(), a.r());
        compare("add (in place)", Kind.ELEMENT, a);

        Pair x = random(0, 1, tokens, d);
        Pair w = random(0, 0.02, d, d);
        Pair y = output(tokens, d);
        matmul("matmul x·Wᵀ [T,D]×[D,D]", x, w, y, tokens, d, d, false, true, false);
        Pair gw = random(0, 0.02, ffn, d);
        Pair gy = output(tokens, ffn);
        matmul("matmul x·Wᵀ [T,D]×[I,D]", x, gw, gy, tokens, ffn, d, false, true, false);
        Pair dw = random(0, 0.02, d, ffn);
        Pair dy = output(tokens, d);
        matmul("matmul x·Wᵀ [T,I]×[D,I]", gy, dw, dy, tokens, d, ffn, false, true, false);
        Pair embed = random(0, 0.02, v, d);
        Pair logits = output(tokens, v);
        matmul("matmul x·Eᵀ [T,D]×[V,D]", x, embed, logits, tokens, v, d, false, true, false);
        // Odd sizes and every transpose, accumulating: a wrong leading dimension or swap shows. k = 48 as well,
        // which a product split along k (GpuBackend.SPLIT_K) divides.
        for (int kk : new int[] {29, 48}) {
            for (boolean ta : new boolean[] {false, true}) {
                for (boolean tb : new boolean[] {false, true}) {
                    int m = 37;
                    int n = 50;
                    Pair pa = random(0, 1, ta ? new int[] {kk, m} : new int[] {m, kk});
                    Pair pb = random(0, 1, tb ? new int[] {n, kk} : new int[] {kk, n});
                    Pair pc = random(0, 1, m, n);
                    matmul("matmul " + (ta ? "Aᵀ" : "A") + "·" + (tb ? "Bᵀ" : "B") + " += [37,50," + kk + "]", pa, pb, pc,
                            m, n, kk, ta, tb, true);
                }
            }
        }

        checkBatched(tokens, d, ffn);

        int[] ids = new int[tokens];
        for (int i = 0; i < tokens; i++) ids[i] = rnd.nextInt(v);
        TokenIds ti = test.uploadIds(ids, batch, seqLen);
        TokenIds ri = ref.uploadIds(ids, batch, seqLen);
        Pair gathered = output(tokens, d);
        test.embedding(ti, embed.t(), gathered.t());
        ref.embedding(ri, embed.r(), gathered.r());
        compare("embedding", Kind.EXACT, gathered);

        Pair gain = random(1, 0.1, d);
        Pair normed = output(tokens, d);
        Pair rstd = output(DType.FLOAT32, tokens);
        test.rmsNorm(x.t(), gain.t(), normed.t(), rstd.t());
        ref.rmsNorm(x.r(), gain.r(), normed.r(), rstd.r());
        compare("rmsNorm out", Kind.REDUCE, normed);
        compare("rmsNorm rstd", Kind.REDUCE, rstd);

        // The residual add and its norm, in place as the model runs it (the sum over the first input).
        Pair res = random(0, 1, tokens, d);
        Pair resIn = random(0, 1, tokens, d);
        Pair resOut = output(tokens, d);
        Pair resRstd = output(DType.FLOAT32, tokens);
        test.addRmsNorm(res.t(), resIn.t(), res.t(), gain.t(), resOut.t(), resRstd.t());
        ref.addRmsNorm(res.r(), resIn.r(), res.r(), gain.r(), resOut.r(), resRstd.r());
        compare("addRmsNorm sum (in place)", Kind.ELEMENT, res);
        compare("addRmsNorm out", Kind.REDUCE, resOut);
        compare("addRmsNorm rstd", Kind.REDUCE, resRstd);
        Pair resSum = output(tokens, d);
        test.fill(resOut.t(), Float.NaN);
        test.fill(resRstd.t(), Float.NaN);
        test.addRmsNorm(resIn.t(), x.t(), resSum.t(), gain.t(), resOut.t(), resRstd.t());
        ref.addRmsNorm(resIn.r(), x.r(), resSum.r(), gain.r(), resOut.r(), resRstd.r());
        compare("addRmsNorm sum", Kind.ELEMENT, resSum);
        compare("addRmsNorm out (sum apart)", Kind.REDUCE, resOut);

        // An offset and scale per row, so the mean and variance both matter.
        float[] lnHost = normal((long) tokens * d, 0, 1);
        for (int row = 0; row < tokens; row++) {
            double shift = 3 * rnd.nextGaussian();
            double scale = 0.5 + rnd.nextDouble();
            for (int c = 0; c < d; c++) lnHost[row * d + c] = (float) (shift + scale * lnHost[row * d + c]);
        }
        Pair lnIn = input(lnHost, tokens, d);
        Pair lnW = random(1, 0.1, d);
        Pair lnB = random(0, 0.1, d);
        Pair lnOut = output(tokens, d);
        Pair mean = output(DType.FLOAT32, tokens);
        Pair lnRstd = output(DType.FLOAT32, tokens);
        test.layerNorm(lnIn.t(), lnW.t(), lnB.t(), lnOut.t(), mean.t(), lnRstd.t());
        ref.layerNorm(lnIn.r(), lnW.r(), lnB.r(), lnOut.r(), mean.r(), lnRstd.r());
        compare("layerNorm out", Kind.REDUCE, lnOut);
        compare("layerNorm mean", Kind.REDUCE, mean);
        compare("layerNorm rstd", Kind.REDUCE, lnRstd);

        for (boolean rope : new boolean[] {true, false}) {
            Pair heads = output(batch, h, seqLen, f);
            test.splitHeads(x.t(), heads.t(), h, k, rope);
            ref.splitHeads(x.r(), heads.r(), h, k, rope);
            compare(rope ? "splitHeads + RoPE" : "splitHeads", rope ? Kind.ELEMENT : Kind.EXACT, heads);
        }

        Pair lrW = random(0, 1.5 / Math.sqrt(d), h, 1, d);
        Pair lrB = random(0, 0.5, h, 1);
        Pair lr = output(batch, h, seqLen);
        test.tttLearningRate(x.t(), lrW.t(), lrB.t(), lr.t());
        ref.tttLearningRate(x.r(), lrW.r(), lrB.r(), lr.r());
        compare("tttLearningRate", Kind.REDUCE, lr);

        float[] idx = normal(k, 0, 0.3);
        idx[Math.min(1, k - 1)] = -2f;  // exercises the clamp at zero
        Pair tokenIdx = input(idx, k);
        Pair tok = output(k);
        test.tokenEta(tokenIdx.t(), tok.t());
        ref.tokenEta(tokenIdx.r(), tok.r());
        compare("tokenEta", Kind.ELEMENT, tok);

        Pair gate = random(0, 2, tokens, ffn);
        Pair up = random(0, 1, tokens, ffn);
        Pair swi = output(tokens, ffn);
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
        List<int[]> shapes = List.of(new int[] {d}, new int[] {3, 5, 7}, new int[] {tokens, d}, new int[] {1});
        List<Pair> block = adjacent(dtype, shapes, true);
        Pair apart = output(7, 3);
        Pair stats = output(DType.FLOAT32, 5);
        List<Pair> all = new ArrayList<>(block);
        all.add(apart);
        all.add(stats);
        all.add(block.get(1));
        for (float value : new float[] {0f, (float) rnd.nextGaussian()}) {
            test.fillAll(all.stream().map(Pair::t).toList(), value);
            ref.fillAll(all.stream().map(Pair::r).toList(), value);
            for (int i = 0; i < all.size() - 1; i++) {
                compare("fillAll " + (value == 0 ? "zero " : "") + "#" + i, Kind.EXACT, all.get(i));
            }
        }

        Pair x = random(0, 1, tokens, d);
        List<Pair> w = adjacent(dtype, List.of(new int[] {d, d}, new int[] {d, d}, new int[] {d, d}), false);
        List<Pair> qkv = adjacent(dtype, List.of(new int[] {tokens, d}, new int[] {tokens, d}, new int[] {tokens, d}),
                true);
        batched("matmulBatched x·W{q,k,v}ᵀ 3×[T,D]×[D,D]", List.of(x), w, qkv, tokens, d, d, false, true, false);
        Pair y = random(0, 1, tokens, d);
        List<Pair> wgu = adjacent(dtype, List.of(new int[] {ffn, d}, new int[] {ffn, d}), false);
        List<Pair> gu = adjacent(dtype, List.of(new int[] {tokens, ffn}, new int[] {tokens, ffn}), true);
        batched("matmulBatched y·W{gate,up}ᵀ 2×[T,D]×[I,D]", List.of(y), wgu, gu, tokens, ffn, d, false, true, false);
        // Weight gradients: dW[i] += dY[i]ᵀ x, x shared; the results start from random values.
        List<Pair> dy = adjacent(dtype, List.of(new int[] {tokens, d}, new int[] {tokens, d}, new int[] {tokens, d}),
                false);
        List<Pair> dw = adjacent(dtype, List.of(new int[] {d, d}, new int[] {d, d}, new int[] {d, d}), false);
        batched("matmulBatched dW{q,k,v} += dYᵀ·x 3×[D,T]×[T,D]", dy, List.of(x), dw, d, d, tokens, true, false,
                true);
        List<Pair> dgu = adjacent(dtype, List.of(new int[] {tokens, ffn}, new int[] {tokens, ffn}), false);
        List<Pair> dwgu = adjacent(dtype, List.of(new int[] {ffn, d}, new int[] {ffn, d}), false);
        batched("matmulBatched dW{gate,up} += dYᵀ·y 2×[I,T]×[T,D]", dgu, List.of(y), dwgu, ffn, d, tokens, true,
                false, true);
        // Input gradients: dX = Σ dY[i] W[i], over the adjacent dY and W above, and accumulating onto random values.
        List<Pair> wd = adjacent(dtype, List.of(new int[] {d, d}, new int[] {d, d}, new int[] {d, d}), false);
        Pair dx = output(tokens, d);
        sum("matmulSum dX = Σ dY·W{q,k,v} 3×[T,D]×[D,D]", dy, wd, dx, tokens, d, d, false, false, false);
        Pair dxAcc = random(0, 1, tokens, d);
        sum("matmulSum dX += Σ dY·W{gate,up} 2×[T,I]×[I,D]", dgu, wgu, dxAcc, tokens, d, ffn, false, false, true);
        // Every transpose at odd sizes, operands at a stride, apart, and shared.
        int m = 37;
        int n = 50;
        int kk = 29;
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                int[] sa = ta ? new int[] {kk, m} : new int[] {m, kk};
                int[] sb = tb ? new int[] {n, kk} : new int[] {kk, n};
                String t = (ta ? "Aᵀ" : "A") + "·" + (tb ? "Bᵀ" : "B");
                List<Pair> pa = adjacent(dtype, List.of(sa, sa, sa), false);
                List<Pair> pb = adjacent(dtype, List.of(sb, sb, sb), false);
                List<Pair> pc = adjacent(dtype, List.of(new int[] {m, n}, new int[] {m, n}, new int[] {m, n}), false);
                batched("matmulBatched " + t + " += 3×[37,50,29]", pa, pb, pc, m, n, kk, ta, tb, true);
                // Spacers between them, so that no fixed stride holds and each product runs alone.
                Pair c0 = random(0, 1, m, n);
                output(3);
                Pair c1 = random(0, 1, m, n);
                Pair c2 = random(0, 1, m, n);
                Pair a0 = random(0, 1, sa);
                Pair a1 = random(0, 1, sa);
                output(5);
                Pair a2 = random(0, 1, sa);
                batched("matmulBatched " + t + " += 3×[37,50,29] apart, B shared", List.of(a0, a1, a2),
                        List.of(random(0, 1, sb)), List.of(c0, c1, c2), m, n, kk, ta, tb, true);
                sum("matmulSum " + t + " = Σ 3×[37,50,29]", pa, pb, output(m, n), m, n, kk, ta, tb, false);
                sum("matmulSum " + t + " += Σ 3×[37,50,29] apart, B shared", List.of(a0, a1, a2),
                        List.of(random(0, 1, sb)), random(0, 1, m, n), m, n, kk, ta, tb, true);
            }
        }
    }

    /**
     * Tensors of these shapes placed back to back on each backend: outputs (NaN on the backend
     * under test) or random inputs.
     */
    private List<Pair> adjacent(DType storage, List<int[]> shapes, boolean output) {
        List<Tensor> t = test.allocateAdjacent(storage, shapes);
        List<Tensor> r = ref.allocateAdjacent(storage, shapes);
        List<Pair> out = new ArrayList<>();
        for (int i = 0; i < shapes.size(); i++) {
            Pair p = new Pair(t.get(i), r.get(i));
            if (output) {
                test.fill(p.t(), Float.NaN);
            } else {
                float[] host = normal(count(shapes.get(i)), 0, 1);
                test.upload(host, p.t());
                ref.upload(host, p.r());
            }
            out.add(p);
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
     * for every kernel variant the device can run (state placements, cluster sizes).
     */
    void checkInner(ModelConfig cfg, int batch, int seqLen) {
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
        Pair lr = input(lrHost, batch, h, seqLen);
        float[] tokHost = new float[k];
        for (int i = 0; i < k; i++) tokHost[i] = (float) Math.max(0, 1.0 / (i + 1) + 0.1 * rnd.nextGaussian());
        tokHost[Math.min(2, k - 1)] = 0f;
        Pair tok = input(tokHost, k);
        Pair w1 = random(0, 0.02, h, f, f1);
        Pair b1 = random(0, 0.02, h, 1, f1);
        Pair w2 = mlp ? random(0, 0.02, h, f1, f) : null;
        Pair b2 = mlp ? random(0, 0.02, h, 1, f) : null;
        Pair nw = random(1, 0.1, h, f);
        Pair nb = random(0, 0.1, h, f);
        InnerInputs ti = new InnerInputs(cfg.tttType(), batch, h, seqLen, f, k, xq.t(), xk.t(), xv.t(), lr.t(), tok.t(),
                w1.t(), b1.t(), mlp ? w2.t() : null, mlp ? b2.t() : null, nw.t(), nb.t());
        InnerInputs ri = new InnerInputs(cfg.tttType(), batch, h, seqLen, f, k, xq.r(), xk.r(), xv.r(), lr.r(), tok.r(),
                w1.r(), b1.r(), mlp ? w2.r() : null, mlp ? b2.r() : null, nw.r(), nb.r());
        int interval = 2;
        int slots = (seqLen / k + interval - 1) / interval;
        int s = cfg.innerStateSize();

        Pair refOut = output(batch, seqLen, cfg.hidden());
        Pair refCk = output(DType.FLOAT32, slots, batch, h, s);
        Pair refLast = output(DType.FLOAT32, batch, h, s);
        ref.innerForward(ri, refOut.r(), refCk.r(), interval, refLast.r());

        List<InnerVariant> variants = test instanceof GpuBackend g ? g.innerVariants(cfg.tttType(), f, k) : List.of();
        List<String> labels = new ArrayList<>();
        if (variants.isEmpty()) labels.add("");
        for (InnerVariant v : variants) labels.add(v.kernelName());
        String type = cfg.tttType().flag();
        for (int i = 0; i < labels.size(); i++) {
            if (test instanceof GpuBackend g) g.forceInnerVariant(variants.get(i));
            String tag = labels.get(i).isEmpty() ? "" : " [" + labels.get(i) + "]";
            Tensor out = test.allocate(batch, seqLen, cfg.hidden());
            Tensor ck = test.allocate(DType.FLOAT32, slots, batch, h, s);
            Tensor last = test.allocate(DType.FLOAT32, batch, h, s);
            test.fill(out, Float.NaN);
            test.fill(ck, Float.NaN);
            test.fill(last, Float.NaN);
            try {
                test.innerForward(ti, out, ck, interval, last);
            } finally {
                if (test instanceof GpuBackend g) g.forceInnerVariant(null);
            }
            compare("innerForward " + type + " out" + tag, Kind.SCAN, out, refOut.r());
            compare("innerForward " + type + " checkpoints" + tag, Kind.SCAN, ck, refCk.r());
            compare("innerForward " + type + " last state" + tag, Kind.SCAN, last, refLast.r());
        }
    }

    /** The inner-forward benchmark's own problem (InnerProblem, same seed on both backends). */
    void checkInnerProblem(ModelConfig cfg, int batch, int seqLen) {
        long seed = rnd.nextLong();
        InnerProblem t = new InnerProblem(test, cfg, batch, seqLen, seed, false, 1);
        InnerProblem r = new InnerProblem(ref, cfg, batch, seqLen, seed, false, 1);
        test.fill(t.out(), Float.NaN);
        t.forward();
        r.forward();
        compare("InnerProblem forward " + cfg.tttType().flag(), Kind.SCAN, t.out(), r.out());
    }

    /**
     * The whole model forward with every parameter off its trivial init (norm gains not one,
     * biases not zero, a token offset clamped at zero), compared on the logits.
     */
    void checkModel(ModelConfig cfg, int batch, int seqLen) {
        List<ParameterSpec> specs = ParameterSpec.model(cfg);
        Parameters tw = new Parameters(test, specs);
        Parameters rw = new Parameters(ref, specs);
        for (ParameterSpec s : specs) {
            float[] host = switch (s.init()) {
                case NORMAL -> normal(s.size(), 0, 0.02);
                case ONE -> normal(s.size(), 1, 0.1);
                case ZERO -> normal(s.size(), 0, 0.05);
            };
            if (s.name().endsWith("learnable_token_idx")) host[Math.min(1, host.length - 1)] = -2f;
            test.upload(host, tw.get(s.name()));
            ref.upload(host, rw.get(s.name()));
        }
        int[] ids = new int[batch * seqLen];
        for (int i = 0; i < ids.length; i++) ids[i] = rnd.nextInt(cfg.vocab());
        TttModel t = new TttModel(test, cfg, tw, ids, batch, seqLen, false, 1);
        TttModel r = new TttModel(ref, cfg, rw, ids, batch, seqLen, false, 1);
        test.fill(t.logits(), Float.NaN);
        t.forward();
        r.forward();
        compare("model forward " + cfg.tttType().flag() + " logits (" + cfg.layers() + " layers)", Kind.MODEL,
                t.logits(), r.logits());
    }

    // ---------------------------------------------------------------- benchmark setup

    /**
     * Checks the GPU work a benchmark configuration times, at a reduced size (at most 2
     * sequences of 64 tokens and 2 layers: the shapes of each layer are the preset's), against
     * the CPU backend, on a backend of its own that is closed before returning. A CPU
     * configuration is the reference itself and is not checked.
     *
     * @throws IllegalStateException naming every failed comparison: do not time that kernel
     */
    public static void checkConfig(BenchConfig config) {
        if (config.backend() == BackendKind.CPU) return;
        try (Backend backend = Backends.open(config.backend(), config.dtype(), config.tf32())) {
            checkConfig(backend, config);
        }
    }

    /**
     * As {@link #checkConfig(BenchConfig)}, on an open backend (its device memory grows by the
     * reduced problem, which stays allocated until the backend closes).
     */
    public static void checkConfig(Backend backend, BenchConfig config) {
        if (backend.name().equals("cpu")) return;
        ModelConfig full = config.model();
        int k = full.miniBatch();
        int seqLen = Math.max(k, Math.min(config.seqLen(), 64) / k * k);
        int batch = Math.min(config.batch(), 2);
        List<Row> rows;
        try (CpuBackend cpu = new CpuBackend(config.dtype())) {
            Verifier v = new Verifier(backend, cpu, config.tf32(), System.nanoTime(), null);
            BackwardVerifier bv = new BackwardVerifier(backend, cpu, config.tf32(), System.nanoTime(), null);
            ModelConfig reduced = new ModelConfig(full.vocab(), full.hidden(), Math.min(full.layers(), 2),
                    full.heads(), full.ffn(), k, full.tttType());
            if (config.innerOnly()) {
                v.checkInnerProblem(full, batch, seqLen);
                if (config.backward()) bv.checkInnerProblem(full, batch, seqLen, config.checkpointInterval());
            } else {
                v.checkModel(reduced, batch, seqLen);
                if (config.backward()) bv.checkModel(reduced, batch, seqLen, config.checkpointInterval());
            }
            rows = new ArrayList<>(v.rows());
            rows.addAll(bv.rows());
        }
        List<String> failed = rows.stream().filter(r -> !r.passed()).map(Row::format).toList();
        if (!failed.isEmpty()) {
            throw new IllegalStateException("the " + backend.name() + " backend does not match the CPU reference for "
                    + config.modelSize() + " " + config.tttType().flag() + " " + config.dtype().flag()
                    + "; refusing to time it:\n" + HEADER + "\n" + String.join("\n", failed));
        }
    }

    // ---------------------------------------------------------------- command line

    static final String USAGE = """
            usage: tttbench verify [--model-size S[,S…]] [--ttt-type linear|mlp|both] [--dtype D[,D…]|all]
                                   [--backend auto|cuda|hip|cpu] [--batch N] [--seq-len N] [--mini-batch N]
                                   [--layers N] [--seed N] [--tf32] [--no-model] [--no-backward] [--no-intervals]
              Every forward and backward op of the backend (default: the GPU that auto finds), the whole
              forward and the whole training step, on fresh random inputs, against the CPU reference
              backend at the same storage type; then, on the backend alone, that gradients at checkpoint
              intervals 1, 2, 4, 8, 16 agree (one sequence of 16 mini-batches) and that a second run
              gives the same bits. --no-backward skips the backward, --no-intervals the last two checks.
              Defaults: --model-size 12m, --ttt-type both, --dtype all, --batch 2, --seq-len 64,
              --mini-batch 16, the preset's layer count. Exit status 1 if any comparison fails.
              --backend cpu checks the CPU backend against itself (the harness, not a device).
            """;

    record Options(List<String> sizes, List<TttType> types, List<DType> dtypes, BackendKind backend, int batch,
            int seqLen, int miniBatch, int layers, long seed, boolean tf32, boolean model, boolean backward,
            boolean intervals) {

        static Options parse(String[] args) {
            List<String> sizes = List.of("12m");
            List<TttType> types = List.of(TttType.LINEAR, TttType.MLP);
            List<DType> dtypes = List.of(DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16);
            BackendKind backend = BackendKind.AUTO;
            int batch = 2;
            int seqLen = 64;
            int miniBatch = 16;
            int layers = 0;
            long seed = System.nanoTime();
            boolean tf32 = false;
            boolean model = true;
            boolean backward = true;
            boolean intervals = true;
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                String v = null;
                int eq = a.indexOf('=');
                if (a.startsWith("--") && eq > 0) {
                    v = a.substring(eq + 1);
                    a = a.substring(0, eq);
                }
                switch (a) {
                    case "--tf32" -> tf32 = true;
                    case "--no-model" -> model = false;
                    case "--no-backward" -> backward = false;
                    case "--no-intervals" -> intervals = false;
                    case "--model-size", "--ttt-type", "--dtype", "--backend", "--batch", "--seq-len", "--mini-batch",
                            "--layers", "--seed" -> {
                        if (v == null) {
                            if (i + 1 >= args.length) throw new IllegalArgumentException(a + " needs a value");
                            v = args[++i];
                        }
                        switch (a) {
                            case "--model-size" -> {
                                sizes = List.of(v.split(","));
                                sizes.forEach(Preset::byName);
                            }
                            case "--ttt-type" -> types = v.equals("both") ? List.of(TttType.LINEAR, TttType.MLP)
                                    : Arrays.stream(v.split(",")).map(TttType::parse).toList();
                            case "--dtype" -> dtypes = v.equals("all") ? List.of(DType.values())
                                    : Arrays.stream(v.split(",")).map(DType::parse).toList();
                            case "--backend" -> backend = BackendKind.parse(v);
                            case "--batch" -> batch = positive(a, v);
                            case "--seq-len" -> seqLen = positive(a, v);
                            case "--mini-batch" -> miniBatch = positive(a, v);
                            case "--layers" -> layers = positive(a, v);
                            case "--seed" -> seed = Long.parseLong(v);
                            default -> throw new IllegalStateException(a);
                        }
                    }
                    default -> throw new IllegalArgumentException("unknown option '" + args[i] + "'");
                }
            }
            if (seqLen % miniBatch != 0) {
                throw new IllegalArgumentException("--seq-len " + seqLen + " is not divisible by --mini-batch " + miniBatch);
            }
            return new Options(sizes, types, dtypes, backend, batch, seqLen, miniBatch, layers, seed, tf32, model,
                    backward, intervals);
        }

        private static int positive(String flag, String v) {
            int n;
            try {
                n = Integer.parseInt(v);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(flag + " must be a positive integer, got '" + v + "'");
            }
            if (n <= 0) throw new IllegalArgumentException(flag + " must be a positive integer, got " + n);
            return n;
        }
    }

    /**
     * The backward checks of one ttt-type: the inner backward with every kernel placement the
     * device has, the inner-backward problem, the training step, and on the tested backend alone the
     * checkpoint intervals and reruns (one sequence of 16 mini-batches).
     */
    private static void checkBackward(BackwardVerifier bv, Backend t, ModelConfig cfg, ModelConfig whole, Options o) {
        // "" is the backend's own choice (on a GPU, TTT-Linear at interval 1 runs a parallel form);
        // each placement forces the one-launch walk with that placement.
        List<String> labels = new ArrayList<>(List.of(""));
        if (t instanceof GpuBackend g) {
            for (InnerPlacement p : g.innerBackwardPlacements(cfg.tttType(), cfg.headDim(), cfg.miniBatch())) {
                labels.add(p.kernelName());
            }
        }
        bv.checkInner(cfg, o.batch(), o.seqLen(), labels, label -> {
            if (t instanceof GpuBackend g) {
                g.forceInnerBackwardPlacement(label == null || label.isEmpty() ? null
                        : java.util.Arrays.stream(InnerPlacement.values()).filter(p -> p.kernelName().equals(label))
                                .findFirst().orElseThrow());
            }
        });
        bv.checkInnerProblem(cfg, o.batch(), o.seqLen(), 1);
        if (o.model()) bv.checkModel(whole, o.batch(), o.seqLen(), 1);
        // The CPU reference against itself checks the harness; its intervals have tests of their own.
        if (o.intervals() && !t.name().equals("cpu")) bv.checkIntervalsAndDeterminism(whole, 1, 16 * o.miniBatch());
    }

    /** For running without the CLI: {@code java -cp benchmarks.jar org.tttbench.verify.Verifier …}. */
    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    /**
     * {@code tttbench verify …}: prints one row per comparison and a summary.
     *
     * @return 0 when everything passed, 1 when a comparison failed, 2 for a usage error or a
     *         backend that cannot be opened
     */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        Options o;
        try {
            o = Options.parse(args);
        } catch (IllegalArgumentException e) {
            err.println("verify: " + e.getMessage());
            err.print(USAGE);
            return 2;
        }
        int failed = 0;
        int total = 0;
        String device = null;
        for (String size : o.sizes()) {
            Preset preset = Preset.byName(size);
            for (DType dtype : o.dtypes()) {
                Backend test;
                try {
                    test = Backends.open(o.backend(), dtype, o.tf32());
                } catch (RuntimeException e) {
                    err.println("verify: cannot open backend " + o.backend().flag() + ": " + e.getMessage());
                    return 2;
                }
                try (Backend t = test; CpuBackend ref = new CpuBackend(dtype)) {
                    if (o.backend() != BackendKind.CPU && t.name().equals("cpu")) {
                        err.println("verify: no GPU backend could be opened, so there is nothing to check against the"
                                + " CPU reference (--backend cpu checks the CPU backend against itself)");
                        return 2;
                    }
                    if (device == null) {
                        device = t.device();
                        out.println("verify: " + t.name() + " backend on " + device + " against the CPU reference; seed "
                                + o.seed() + (o.tf32() ? "; TF32 allowed" : ""));
                    }
                    long seed = o.seed() ^ (31L * size.hashCode() + dtype.ordinal());
                    Verifier v = new Verifier(t, ref, o.tf32(), seed, out);
                    BackwardVerifier bv = new BackwardVerifier(t, ref, o.tf32(), ~seed, out);
                    ModelConfig base = preset.model(o.types().get(0), o.miniBatch());
                    int layers = o.layers() > 0 ? o.layers() : preset.layers();
                    out.println();
                    out.println("== " + size + " " + dtype.flag() + ": D " + base.hidden() + ", H " + base.heads() + ", F "
                            + base.headDim() + ", I " + base.ffn() + ", batch " + o.batch() + ", seq-len " + o.seqLen()
                            + ", mini-batch " + o.miniBatch() + ", " + layers + " layers in the model check");
                    out.println(HEADER);
                    try {
                        v.checkOps(base, o.batch(), o.seqLen());
                        if (o.backward()) bv.checkOps(base, o.batch(), o.seqLen());
                        for (TttType type : o.types()) {
                            ModelConfig cfg = preset.model(type, o.miniBatch());
                            ModelConfig whole = new ModelConfig(cfg.vocab(), cfg.hidden(), layers, cfg.heads(), cfg.ffn(),
                                    cfg.miniBatch(), type);
                            v.checkInner(cfg, o.batch(), o.seqLen());
                            v.checkInnerProblem(cfg, o.batch(), o.seqLen());
                            if (o.model()) v.checkModel(whole, o.batch(), o.seqLen());
                            if (o.backward()) {
                                checkBackward(bv, t, cfg, whole, o);
                            }
                        }
                    } catch (RuntimeException e) {
                        // An op that throws (a kernel that fails to launch, say) fails this configuration.
                        out.println("ERROR " + size + " " + dtype.flag() + ": " + e);
                        failed++;
                    }
                    List<Row> all = new ArrayList<>(v.rows());
                    all.addAll(bv.rows());
                    for (Row r : all) {
                        total++;
                        if (!r.passed()) failed++;
                    }
                }
            }
        }
        out.println();
        out.println(failed == 0 ? "verify: all " + total + " comparisons passed"
                : "verify: " + failed + " of " + total + " comparisons FAILED");
        return failed == 0 ? 0 : 1;
    }
}
