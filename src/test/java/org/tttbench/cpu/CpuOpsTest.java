package org.tttbench.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;
import org.tttbench.backend.Tensor;
import org.tttbench.backend.TokenIds;
import org.tttbench.config.DType;

/**
 * Single ops of the CPU backend on fresh random inputs: forward values against SPEC's formulas,
 * backward against central differences of L = Σ r ∘ op(x) for a random r.
 */
class CpuOpsTest {

    private final CpuBackend be = new CpuBackend(DType.FLOAT32);
    private long seed = 100;

    private float[] random(int n, double std) {
        return RandomModel.gaussian(n, std, seed++);
    }

    private Tensor tensor(float[] values, int... shape) {
        Tensor t = be.allocate(shape);
        be.upload(values, t);
        return t;
    }

    private static double dot(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += (double) a[i] * b[i];
        return s;
    }

    /**
     * Asserts that {@code analytic} is the gradient of x ↦ Σ r ∘ f(x) at every entry, by central
     * differences with step h, within 2e-3 of the gradient's largest entry.
     */
    private static void assertGradient(String what, float[] x, float[] r, UnaryOperator<float[]> f, float[] analytic,
            float h) {
        double scale = 0;
        for (float g : analytic) scale = Math.max(scale, Math.abs(g));
        assertTrue(scale > 0, what + ": the gradient is all zeros");
        for (int i = 0; i < x.length; i++) {
            float[] v = x.clone();
            v[i] = x[i] + h;
            double up = dot(r, f.apply(v));
            v[i] = x[i] - h;
            double down = dot(r, f.apply(v));
            double numeric = (up - down) / ((double) (x[i] + h) - (x[i] - h));
            assertEquals(numeric, analytic[i], 2e-3 * scale, what + "[" + i + "]");
        }
    }

    private static float[] minus(float[] a, float[] b) {
        float[] d = new float[a.length];
        for (int i = 0; i < a.length; i++) d[i] = a[i] - b[i];
        return d;
    }

    // ---------------------------------------------------------------- matmul

    @Test
    void matmulMatchesTheDefinitionForEveryTransposeAndAccumulate() {
        int m = 70;
        int n = 530;
        int k = 37; // every dimension crosses a tile edge (64 × 512 × 16)
        for (boolean transA : new boolean[] {false, true}) {
            for (boolean transB : new boolean[] {false, true}) {
                for (boolean accumulate : new boolean[] {false, true}) {
                    float[] a = random(m * k, 1);
                    float[] b = random(k * n, 1);
                    float[] c0 = random(m * n, 1);
                    Tensor c = tensor(c0, m, n);
                    be.matmul(tensor(a, transA ? k : m, transA ? m : k), tensor(b, transB ? n : k, transB ? k : n), c,
                            m, n, k, transA, transB, accumulate);
                    float[] got = be.download(c);
                    float[] expected = new float[m * n];
                    for (int i = 0; i < m; i++) {
                        for (int j = 0; j < n; j++) {
                            double s = accumulate ? c0[i * n + j] : 0;
                            for (int kk = 0; kk < k; kk++) {
                                s += (double) (transA ? a[kk * m + i] : a[i * k + kk]) * (transB ? b[j * k + kk] : b[kk * n + j]);
                            }
                            expected[i * n + j] = (float) s;
                        }
                    }
                    double err = RandomModel.relativeError(got, expected);
                    assertTrue(err < 1e-7, "transA " + transA + " transB " + transB + " accumulate " + accumulate + ": " + err);
                }
            }
        }
    }

    @Test
    void matmulRejectsOperandsOfTheWrongSize() {
        Tensor a = be.allocate(3, 4);
        Tensor b = be.allocate(4, 5);
        Tensor c = be.allocate(3, 6);
        assertThrows(IllegalArgumentException.class, () -> be.matmul(a, b, c, 3, 6, 4, false, false, false));
    }

    // ---------------------------------------------------------------- storage types

    @Test
    void reducedPrecisionBackendsRoundEveryStoredValue() {
        for (DType dtype : new DType[] {DType.BFLOAT16, DType.FLOAT16}) {
            CpuBackend lo = new CpuBackend(dtype);
            float[] x = random(64, 1);
            Tensor t = lo.allocate(8, 8);
            lo.upload(x, t);
            float[] stored = lo.download(t);
            int changed = 0;
            for (int i = 0; i < x.length; i++) {
                assertEquals(dtype.round(x[i]), stored[i], dtype + " upload");
                if (stored[i] != x[i]) changed++;
            }
            assertTrue(changed > 32, dtype + ": uploads were not rounded");
            Tensor c = lo.allocate(8, 8);
            lo.matmul(t, t, c, 8, 8, 8, false, false, false);
            float[] product = lo.download(c);
            for (int i = 0; i < 8; i++) {
                for (int j = 0; j < 8; j++) {
                    double s = 0;
                    for (int kk = 0; kk < 8; kk++) s += (double) stored[i * 8 + kk] * stored[kk * 8 + j];
                    assertEquals(dtype.round((float) s), product[i * 8 + j], dtype + " matmul");
                }
            }
            // Statistics allocated as float32 keep float32 values.
            Tensor out = lo.allocate(8, 8);
            Tensor rstd = lo.allocate(DType.FLOAT32, 8);
            Tensor gain = lo.allocate(8);
            lo.fill(gain, 1f);
            lo.rmsNorm(t, gain, out, rstd);
            float[] r = lo.download(rstd);
            boolean wider = false;
            for (float v : r) wider |= dtype.round(v) != v;
            assertTrue(wider, dtype + ": a float32 tensor was rounded to the backend's type");
            for (float v : lo.download(out)) assertEquals(dtype.round(v), v, dtype + " rmsNorm out");
        }
    }

    // ---------------------------------------------------------------- norms

    @Test
    void rmsNormMatchesItsDefinitionAndItsBackwardMatchesFiniteDifferences() {
        int rows = 5;
        int d = 16;
        float[] x = random(rows * d, 1);
        float[] gain = random(d, 0.3);
        for (int j = 0; j < d; j++) gain[j] += 1;
        float[] r = random(rows * d, 1);
        Tensor out = be.allocate(rows, d);
        Tensor rstd = be.allocate(DType.FLOAT32, rows);
        Tensor gainT = tensor(gain, d);
        be.rmsNorm(tensor(x, rows, d), gainT, out, rstd);
        double ms = 0;
        for (int j = 0; j < d; j++) ms += (double) x[d + j] * x[d + j];
        assertEquals(x[d + 3] / Math.sqrt(ms / d + 1e-6) * gain[3], be.download(out)[d + 3], 1e-6);

        float[] priorDx = random(rows * d, 1);
        float[] priorDGain = random(d, 1);
        Tensor dx = tensor(priorDx, rows, d);
        Tensor dGain = tensor(priorDGain, d);
        be.rmsNormBackward(tensor(x, rows, d), gainT, rstd, tensor(r, rows, d), dx, dGain);
        assertGradient("rmsNorm dx", x, r, v -> {
            Tensor o = be.allocate(rows, d);
            be.rmsNorm(tensor(v, rows, d), gainT, o, be.allocate(DType.FLOAT32, rows));
            return be.download(o);
        }, minus(be.download(dx), priorDx), 1e-2f);
        assertGradient("rmsNorm dGain", gain, r, g -> {
            Tensor o = be.allocate(rows, d);
            be.rmsNorm(tensor(x, rows, d), tensor(g, d), o, be.allocate(DType.FLOAT32, rows));
            return be.download(o);
        }, minus(be.download(dGain), priorDGain), 1e-2f);
    }

    @Test
    void layerNormBackwardMatchesFiniteDifferences() {
        int rows = 4;
        int d = 12;
        float[] x = random(rows * d, 2);
        float[] w = random(d, 0.3);
        for (int j = 0; j < d; j++) w[j] += 1;
        float[] bias = random(d, 0.3);
        float[] r = random(rows * d, 1);
        Tensor mean = be.allocate(DType.FLOAT32, rows);
        Tensor rstd = be.allocate(DType.FLOAT32, rows);
        be.layerNorm(tensor(x, rows, d), tensor(w, d), tensor(bias, d), be.allocate(rows, d), mean, rstd);
        Tensor dx = tensor(random(rows * d, 1), rows, d); // overwritten
        float[] priorDw = random(d, 1);
        float[] priorDb = random(d, 1);
        Tensor dw = tensor(priorDw, d);
        Tensor db = tensor(priorDb, d);
        be.layerNormBackward(tensor(x, rows, d), tensor(w, d), mean, rstd, tensor(r, rows, d), dx, dw, db);
        UnaryOperator<float[]> byX = v -> layerNorm(v, w, bias, rows, d);
        assertGradient("layerNorm dx", x, r, byX, be.download(dx), 1e-2f);
        assertGradient("layerNorm dWeight", w, r, v -> layerNorm(x, v, bias, rows, d),
                minus(be.download(dw), priorDw), 1e-2f);
        assertGradient("layerNorm dBias", bias, r, v -> layerNorm(x, w, v, rows, d),
                minus(be.download(db), priorDb), 1e-2f);
        // Mean and variance are per row: the normalised rows have mean 0 and variance 1.
        float[] unit = layerNorm(x, filled(d, 1), filled(d, 0), rows, d);
        double m = 0;
        double v = 0;
        for (int j = 0; j < d; j++) m += unit[d + j];
        for (int j = 0; j < d; j++) v += unit[d + j] * unit[d + j];
        assertEquals(0, m / d, 1e-6);
        assertEquals(1, v / d, 1e-4);
    }

    private float[] layerNorm(float[] x, float[] w, float[] b, int rows, int d) {
        Tensor o = be.allocate(rows, d);
        be.layerNorm(tensor(x, rows, d), tensor(w, d), tensor(b, d), o, be.allocate(DType.FLOAT32, rows),
                be.allocate(DType.FLOAT32, rows));
        return be.download(o);
    }

    private static float[] filled(int n, float v) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, v);
        return a;
    }

    // ---------------------------------------------------------------- TTT layer inputs

    @Test
    void splitHeadsAppliesRopeByPositionInTheMiniBatchAndItsBackwardIsItsTranspose() {
        int batch = 2;
        int seqLen = 8;
        int heads = 2;
        int f = 8;
        int k = 4;
        int d = heads * f;
        float[] x = random(batch * seqLen * d, 1);
        for (boolean rope : new boolean[] {false, true}) {
            Tensor split = be.allocate(batch, heads, seqLen, f);
            be.splitHeads(tensor(x, batch * seqLen, d), split, heads, k, rope);
            float[] s = be.download(split);
            // b = 1, t = 6 (position 2 in its mini-batch), head 1, pair i = 1.
            int src = (1 * seqLen + 6) * d + f + 2;
            int dst = ((1 * heads + 1) * seqLen + 6) * f + 2;
            double angle = rope ? 2 * Math.pow(10000, -2.0 / f) : 0;
            assertEquals(x[src] * Math.cos(angle) - x[src + 1] * Math.sin(angle), s[dst], 1e-6);
            assertEquals(x[src + 1] * Math.cos(angle) + x[src] * Math.sin(angle), s[dst + 1], 1e-6);
            // <split(x), y> = <x, splitᵀ(y)>
            float[] y = random(s.length, 1);
            Tensor back = tensor(random(x.length, 1), batch * seqLen, d); // overwritten
            be.splitHeadsBackward(tensor(y, batch, heads, seqLen, f), back, heads, k, rope);
            assertEquals(dot(s, y), dot(x, be.download(back)), 1e-5 * Math.sqrt(x.length), "rope " + rope);
        }
    }

    @Test
    void learningRateMatchesSpecAndItsBackwardMatchesFiniteDifferences() {
        int batch = 2;
        int seqLen = 3;
        int heads = 2;
        int d = 8;
        float[] x = random(batch * seqLen * d, 1);
        float[] w = random(heads * d, 0.5);
        float[] bias = random(heads, 0.5);
        float[] r = random(batch * heads * seqLen, 1);
        Tensor lr = be.allocate(batch, heads, seqLen);
        be.tttLearningRate(tensor(x, batch * seqLen, d), tensor(w, heads, 1, d), tensor(bias, heads, 1), lr);
        // lr[b=1, h=1, t=2] = sigmoid(x[1·L + 2] · w[1] + bias[1]) / F, F = D / H
        double z = bias[1];
        for (int j = 0; j < d; j++) z += (double) x[(seqLen + 2) * d + j] * w[d + j];
        assertEquals(1 / (1 + Math.exp(-z)) / (d / heads), be.download(lr)[(heads + 1) * seqLen + 2], 1e-7);

        float[] priorDx = random(x.length, 1);
        Tensor dx = tensor(priorDx, batch * seqLen, d);
        Tensor dw = be.allocate(heads, 1, d);
        Tensor db = be.allocate(heads, 1);
        be.tttLearningRateBackward(tensor(x, batch * seqLen, d), tensor(w, heads, 1, d), lr, tensor(r, batch, heads, seqLen),
                dx, dw, db);
        assertGradient("lr dx", x, r, v -> learningRate(v, w, bias, batch, seqLen, heads, d),
                minus(be.download(dx), priorDx), 1e-2f);
        assertGradient("lr dWeight", w, r, v -> learningRate(x, v, bias, batch, seqLen, heads, d), be.download(dw), 1e-2f);
        assertGradient("lr dBias", bias, r, v -> learningRate(x, w, v, batch, seqLen, heads, d), be.download(db), 1e-2f);
    }

    private float[] learningRate(float[] x, float[] w, float[] b, int batch, int seqLen, int heads, int d) {
        Tensor lr = be.allocate(batch, heads, seqLen);
        be.tttLearningRate(tensor(x, batch * seqLen, d), tensor(w, heads, 1, d), tensor(b, heads, 1), lr);
        return be.download(lr);
    }

    @Test
    void tokenEtaClampsAtZeroAndPassesGradientOnlyWhereUnclamped() {
        float[] idx = {0.3f, -0.1f, -2f, 0.05f};
        Tensor tok = be.allocate(4);
        be.tokenEta(tensor(idx, 4), tok);
        float[] t = be.download(tok);
        assertEquals(1.3f, t[0], 1e-7);
        assertEquals(0.4f, t[1], 1e-7);
        assertEquals(0f, t[2]);
        assertEquals(0.25f + 0.05f, t[3], 1e-7);
        float[] prior = {1, 2, 3, 4};
        Tensor d = tensor(prior.clone(), 4);
        be.tokenEtaBackward(tensor(idx, 4), tensor(new float[] {0.5f, -0.25f, 7f, 2f}, 4), d);
        float[] got = be.download(d);
        assertEquals(1.5f, got[0]);
        assertEquals(1.75f, got[1]);
        assertEquals(3f, got[2], "clamped entry must get no gradient");
        assertEquals(6f, got[3]);
    }

    // ---------------------------------------------------------------- embedding and feed-forward

    @Test
    void embeddingGathersRowsAndItsBackwardSumsRepeatedTokens() {
        int vocab = 6;
        int d = 4;
        int[] ids = {3, 1, 3, 5, 3, 0};
        TokenIds tokenIds = be.uploadIds(ids, 2, 3);
        float[] table = random(vocab * d, 1);
        Tensor out = be.allocate(ids.length, d);
        be.embedding(tokenIds, tensor(table, vocab, d), out);
        float[] o = be.download(out);
        for (int t = 0; t < ids.length; t++) {
            for (int j = 0; j < d; j++) assertEquals(table[ids[t] * d + j], o[t * d + j]);
        }
        float[] dOut = random(ids.length * d, 1);
        float[] prior = random(vocab * d, 1);
        Tensor dTable = tensor(prior, vocab, d);
        be.embeddingBackward(tokenIds, tensor(dOut, ids.length, d), dTable);
        float[] got = be.download(dTable);
        for (int v = 0; v < vocab; v++) {
            for (int j = 0; j < d; j++) {
                double expected = prior[v * d + j];
                for (int t = 0; t < ids.length; t++) if (ids[t] == v) expected += dOut[t * d + j];
                assertEquals(expected, got[v * d + j], 1e-6, "row " + v);
            }
        }
        assertThrows(IllegalArgumentException.class,
                () -> be.embedding(be.uploadIds(new int[] {vocab}, 1, 1), tensor(table, vocab, d), be.allocate(1, d)));
    }

    @Test
    void swigluBackwardMatchesFiniteDifferences() {
        int n = 40;
        float[] gate = random(n, 2);
        float[] up = random(n, 1);
        float[] r = random(n, 1);
        Tensor out = be.allocate(n);
        be.swiglu(tensor(gate, n), tensor(up, n), out);
        assertEquals(gate[7] / (1 + Math.exp(-gate[7])) * up[7], be.download(out)[7], 1e-6);
        Tensor dGate = be.allocate(n);
        Tensor dUp = be.allocate(n);
        be.swigluBackward(tensor(gate, n), tensor(up, n), tensor(r, n), dGate, dUp);
        assertGradient("swiglu dGate", gate, r, g -> swiglu(g, up), be.download(dGate), 1e-2f);
        assertGradient("swiglu dUp", up, r, u -> swiglu(gate, u), be.download(dUp), 1e-2f);
        assertNotEquals(0f, be.download(dGate)[0]);
    }

    private float[] swiglu(float[] gate, float[] up) {
        Tensor o = be.allocate(gate.length);
        be.swiglu(tensor(gate, gate.length), tensor(up, up.length), o);
        return be.download(o);
    }

    @Test
    void addIsElementwise() {
        float[] a = random(10, 1);
        float[] b = random(10, 1);
        Tensor out = be.allocate(10);
        be.add(tensor(a, 10), tensor(b, 10), out);
        float[] s = be.download(out);
        for (int i = 0; i < 10; i++) assertEquals(a[i] + b[i], s[i]);
    }
}
