package org.tttbench.cpu;

import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.IntStream;
import org.tttbench.backend.Backend;
import org.tttbench.backend.InnerGrads;
import org.tttbench.backend.InnerInputs;
import org.tttbench.backend.Tensor;
import org.tttbench.backend.TokenIds;
import org.tttbench.backend.TttOps;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;

/**
 * The reference backend: every op of {@link org.tttbench.backend.TttOps} in plain Java, each
 * written to be checked against SPEC.md line by line. Arithmetic is float64; every stored
 * value is rounded to its tensor's storage type, which emulates bfloat16 and float16 storage
 * exactly. Work is spread over the common fork-join pool (rows, (b, h) pairs, matmul tiles),
 * and every reduction into a parameter gradient runs in a fixed order, so results are
 * deterministic.
 */
public final class CpuBackend implements Backend {

    private final DType dtype;
    private final AtomicLong allocated = new AtomicLong();

    public CpuBackend(DType dtype) {
        this.dtype = dtype;
    }

    /** Token ids in host memory. */
    private record CpuTokenIds(int[] ids, int batch, int seqLen) implements TokenIds {
    }

    // ---------------------------------------------------------------- Backend

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public String device() {
        return "CPU (" + Runtime.getRuntime().availableProcessors() + " threads)";
    }

    @Override
    public DType dtype() {
        return dtype;
    }

    @Override
    public Tensor allocate(DType storage, int... shape) {
        CpuTensor t = new CpuTensor(storage, shape);
        // Memory is held as float32 whatever the storage type; count what the type would take.
        allocated.addAndGet((long) t.length() * storage.bytes());
        return t;
    }

    @Override
    public void upload(float[] data, Tensor t) {
        CpuTensor c = CpuTensor.of(t);
        if (data.length != c.length()) {
            throw new IllegalArgumentException("upload of " + data.length + " values into " + c);
        }
        for (int i = 0; i < data.length; i++) c.set(i, data[i]);
    }

    @Override
    public float[] download(Tensor t) {
        return CpuTensor.of(t).data.clone();
    }

    @Override
    public TokenIds uploadIds(int[] ids, int batch, int seqLen) {
        if (ids.length != (long) batch * seqLen) {
            throw new IllegalArgumentException(ids.length + " token ids for batch " + batch + " × seqLen " + seqLen);
        }
        allocated.addAndGet(4L * ids.length);
        return new CpuTokenIds(ids.clone(), batch, seqLen);
    }

    @Override
    public void synchronize() {
        // Every op has finished when it returns.
    }

    /** Bytes of every tensor allocated so far: tensors are never freed while the backend lives. */
    @Override
    public long peakMemoryBytes() {
        return allocated.get();
    }

    @Override
    public void close() {
    }

    // ---------------------------------------------------------------- general

    @Override
    public void fill(Tensor t, float value) {
        CpuTensor c = CpuTensor.of(t);
        Arrays.fill(c.data, c.dtype().round(value));
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        CpuTensor x = CpuTensor.of(a);
        CpuTensor y = CpuTensor.of(b);
        CpuTensor o = CpuTensor.of(out);
        requireSameSize(x, y, "add");
        requireSameSize(x, o, "add");
        IntStream.range(0, o.length()).parallel().forEach(i -> o.set(i, (double) x.get(i) + y.get(i)));
    }

    @Override
    public void matmul(Tensor a, Tensor b, Tensor c, int m, int n, int k, boolean transA, boolean transB,
            boolean accumulate) {
        CpuTensor x = CpuTensor.of(a);
        CpuTensor y = CpuTensor.of(b);
        CpuTensor z = CpuTensor.of(c);
        requireSize(x, (long) m * k, "matmul a");
        requireSize(y, (long) k * n, "matmul b");
        requireSize(z, (long) m * n, "matmul c");
        Matmul.multiply(x.data, y.data, z.data, z.dtype(), m, n, k, transA, transB, accumulate);
    }

    /** One {@link #fill} after another: the reference has no launches to save. */
    @Override
    public void fillAll(List<Tensor> ts, float value) {
        for (Tensor t : ts) fill(t, value);
    }

    /** One {@link #matmul} after another, so the results are those bits exactly. */
    @Override
    public void matmulBatched(List<Tensor> a, List<Tensor> b, List<Tensor> c, int m, int n, int k, boolean transA,
            boolean transB, boolean accumulate) {
        int count = TttOps.batchCount(a, b, c);
        for (int i = 0; i < count; i++) {
            matmul(a.get(a.size() == 1 ? 0 : i), b.get(b.size() == 1 ? 0 : i), c.get(i), m, n, k, transA, transB,
                    accumulate);
        }
    }

    /** {@link #add}, then {@link #rmsNorm} of the stored sum: the same bits as the two ops. */
    @Override
    public void addRmsNorm(Tensor a, Tensor b, Tensor sum, Tensor gain, Tensor out, Tensor rstd) {
        add(a, b, sum);
        rmsNorm(sum, gain, out, rstd);
    }

    /** One {@link #matmul} after another into c, so the results are those bits exactly. */
    @Override
    public void matmulSum(List<Tensor> a, List<Tensor> b, Tensor c, int m, int n, int k, boolean transA,
            boolean transB, boolean accumulate) {
        int count = Math.max(a.size(), b.size());
        TttOps.batchCount(a, b, java.util.Collections.nCopies(count, c));
        for (int i = 0; i < count; i++) {
            matmul(a.get(a.size() == 1 ? 0 : i), b.get(b.size() == 1 ? 0 : i), c, m, n, k, transA, transB,
                    accumulate || i > 0);
        }
    }

    // ---------------------------------------------------------------- embedding

    @Override
    public void embedding(TokenIds ids, Tensor table, Tensor out) {
        int[] tokens = ids(ids);
        CpuTensor tab = CpuTensor.of(table);
        CpuTensor o = CpuTensor.of(out);
        int vocab = tab.dim(0);
        int d = tab.length() / vocab;
        requireSize(o, (long) tokens.length * d, "embedding out");
        IntStream.range(0, tokens.length).parallel().forEach(t -> {
            int id = tokens[t];
            if (id < 0 || id >= vocab) throw new IllegalArgumentException("token id " + id + " outside [0, " + vocab + ")");
            for (int j = 0; j < d; j++) o.set(t * d + j, tab.get(id * d + j));
        });
    }

    @Override
    public void embeddingBackward(TokenIds ids, Tensor dOut, Tensor dTable) {
        int[] tokens = ids(ids);
        CpuTensor dy = CpuTensor.of(dOut);
        CpuTensor dt = CpuTensor.of(dTable);
        int vocab = dt.dim(0);
        int d = dt.length() / vocab;
        requireSize(dy, (long) tokens.length * d, "embeddingBackward dOut");
        // Group the tokens by id (counting sort, stable in t), then sum each id's rows in
        // float64 in token order and add them to the table once.
        int[] start = new int[vocab + 1];
        for (int id : tokens) start[id + 1]++;
        for (int v = 0; v < vocab; v++) start[v + 1] += start[v];
        int[] order = new int[tokens.length];
        int[] next = Arrays.copyOf(start, vocab);
        for (int t = 0; t < tokens.length; t++) order[next[tokens[t]]++] = t;
        IntStream.range(0, vocab).parallel().filter(v -> start[v + 1] > start[v]).forEach(v -> {
            double[] sum = new double[d];
            for (int s = start[v]; s < start[v + 1]; s++) {
                int t = order[s];
                for (int j = 0; j < d; j++) sum[j] += dy.get(t * d + j);
            }
            for (int j = 0; j < d; j++) dt.add(v * d + j, sum[j]);
        });
    }

    // ---------------------------------------------------------------- norms

    @Override
    public void rmsNorm(Tensor x, Tensor gain, Tensor out, Tensor rstd) {
        CpuTensor in = CpuTensor.of(x);
        CpuTensor g = CpuTensor.of(gain);
        CpuTensor o = CpuTensor.of(out);
        CpuTensor r = CpuTensor.of(rstd);
        int d = g.length();
        int rows = in.length() / d;
        requireSameSize(in, o, "rmsNorm");
        requireSize(r, rows, "rmsNorm rstd");
        IntStream.range(0, rows).parallel().forEach(row -> {
            double ms = 0;
            for (int j = 0; j < d; j++) ms += (double) in.get(row * d + j) * in.get(row * d + j);
            double inv = 1 / Math.sqrt(ms / d + ModelConfig.RMS_NORM_EPS);
            r.set(row, inv);
            for (int j = 0; j < d; j++) o.set(row * d + j, in.get(row * d + j) * inv * g.get(j));
        });
    }

    @Override
    public void rmsNormBackward(Tensor x, Tensor gain, Tensor rstd, Tensor dOut, Tensor dx, Tensor dGain) {
        CpuTensor in = CpuTensor.of(x);
        CpuTensor g = CpuTensor.of(gain);
        CpuTensor r = CpuTensor.of(rstd);
        CpuTensor dy = CpuTensor.of(dOut);
        CpuTensor dIn = CpuTensor.of(dx);
        CpuTensor dg = CpuTensor.of(dGain);
        int d = g.length();
        int rows = in.length() / d;
        requireSameSize(in, dy, "rmsNormBackward");
        requireSameSize(in, dIn, "rmsNormBackward");
        requireSize(dg, d, "rmsNormBackward dGain");
        // y = x·r·g with r = (mean(x²) + eps)^(−1/2):  dx = r·g∘dy − r³·x·Σ(g∘dy∘x)/D
        IntStream.range(0, rows).parallel().forEach(row -> {
            double inv = r.get(row);
            double dot = 0;
            for (int j = 0; j < d; j++) dot += (double) g.get(j) * dy.get(row * d + j) * in.get(row * d + j);
            for (int j = 0; j < d; j++) {
                int i = row * d + j;
                dIn.add(i, inv * g.get(j) * dy.get(i) - inv * inv * inv * in.get(i) * dot / d);
            }
        });
        double[] sum = new double[d];
        for (int row = 0; row < rows; row++) {
            double inv = r.get(row);
            for (int j = 0; j < d; j++) sum[j] += (double) dy.get(row * d + j) * in.get(row * d + j) * inv;
        }
        for (int j = 0; j < d; j++) dg.add(j, sum[j]);
    }

    @Override
    public void layerNorm(Tensor x, Tensor weight, Tensor bias, Tensor out, Tensor mean, Tensor rstd) {
        CpuTensor in = CpuTensor.of(x);
        CpuTensor w = CpuTensor.of(weight);
        CpuTensor bs = CpuTensor.of(bias);
        CpuTensor o = CpuTensor.of(out);
        CpuTensor mu = CpuTensor.of(mean);
        CpuTensor r = CpuTensor.of(rstd);
        int d = w.length();
        int rows = in.length() / d;
        requireSameSize(in, o, "layerNorm");
        requireSize(mu, rows, "layerNorm mean");
        requireSize(r, rows, "layerNorm rstd");
        IntStream.range(0, rows).parallel().forEach(row -> {
            double m = 0;
            for (int j = 0; j < d; j++) m += in.get(row * d + j);
            m /= d;
            double var = 0;
            for (int j = 0; j < d; j++) {
                double c = in.get(row * d + j) - m;
                var += c * c;
            }
            double inv = 1 / Math.sqrt(var / d + ModelConfig.LAYER_NORM_EPS);
            mu.set(row, m);
            r.set(row, inv);
            for (int j = 0; j < d; j++) {
                o.set(row * d + j, (in.get(row * d + j) - m) * inv * w.get(j) + bs.get(j));
            }
        });
    }

    @Override
    public void layerNormBackward(Tensor x, Tensor weight, Tensor mean, Tensor rstd, Tensor dOut, Tensor dx,
            Tensor dWeight, Tensor dBias) {
        CpuTensor in = CpuTensor.of(x);
        CpuTensor w = CpuTensor.of(weight);
        CpuTensor mu = CpuTensor.of(mean);
        CpuTensor r = CpuTensor.of(rstd);
        CpuTensor dy = CpuTensor.of(dOut);
        CpuTensor dIn = CpuTensor.of(dx);
        CpuTensor dw = CpuTensor.of(dWeight);
        CpuTensor db = CpuTensor.of(dBias);
        int d = w.length();
        int rows = in.length() / d;
        requireSameSize(in, dy, "layerNormBackward");
        requireSameSize(in, dIn, "layerNormBackward");
        // x̂ = (x − μ)·r, y = x̂·w + b:  dx = r·(dx̂ − mean(dx̂) − x̂·mean(dx̂∘x̂)), dx̂ = dy∘w
        IntStream.range(0, rows).parallel().forEach(row -> {
            double m = mu.get(row);
            double inv = r.get(row);
            double m1 = 0;
            double m2 = 0;
            for (int j = 0; j < d; j++) {
                double dxhat = (double) dy.get(row * d + j) * w.get(j);
                m1 += dxhat;
                m2 += dxhat * (in.get(row * d + j) - m) * inv;
            }
            m1 /= d;
            m2 /= d;
            for (int j = 0; j < d; j++) {
                int i = row * d + j;
                double xhat = (in.get(i) - m) * inv;
                dIn.set(i, inv * ((double) dy.get(i) * w.get(j) - m1 - xhat * m2));
            }
        });
        double[] sw = new double[d];
        double[] sb = new double[d];
        for (int row = 0; row < rows; row++) {
            double m = mu.get(row);
            double inv = r.get(row);
            for (int j = 0; j < d; j++) {
                int i = row * d + j;
                sw[j] += dy.get(i) * (in.get(i) - m) * inv;
                sb[j] += dy.get(i);
            }
        }
        for (int j = 0; j < d; j++) {
            dw.add(j, sw[j]);
            db.add(j, sb[j]);
        }
    }

    // ---------------------------------------------------------------- TTT layer inputs

    /** cos and sin of p·10000^(−2i/F) for p &lt; K, i &lt; F/2: [K][F/2]. */
    private static double[][][] ropeTables(int miniBatch, int f) {
        double[][] cos = new double[miniBatch][f / 2];
        double[][] sin = new double[miniBatch][f / 2];
        for (int p = 0; p < miniBatch; p++) {
            for (int i = 0; i < f / 2; i++) {
                double angle = p * Math.pow(ModelConfig.ROPE_THETA, -2.0 * i / f);
                cos[p][i] = Math.cos(angle);
                sin[p][i] = Math.sin(angle);
            }
        }
        return new double[][][] {cos, sin};
    }

    @Override
    public void splitHeads(Tensor x, Tensor heads, int numHeads, int miniBatch, boolean rope) {
        CpuTensor in = CpuTensor.of(x);
        CpuTensor o = CpuTensor.of(heads);
        int batch = o.dim(0);
        int seqLen = o.dim(2);
        int f = o.dim(3);
        if (o.dim(1) != numHeads) throw new IllegalArgumentException("splitHeads: " + o + " for " + numHeads + " heads");
        requireSameSize(in, o, "splitHeads");
        double[][][] tables = ropeTables(miniBatch, f);
        IntStream.range(0, batch * seqLen).parallel().forEach(bt -> {
            int b = bt / seqLen;
            int t = bt % seqLen;
            int p = t % miniBatch;
            for (int h = 0; h < numHeads; h++) {
                int src = bt * numHeads * f + h * f;
                int dst = ((b * numHeads + h) * seqLen + t) * f;
                for (int i = 0; i < f / 2; i++) {
                    double x0 = in.get(src + 2 * i);
                    double x1 = in.get(src + 2 * i + 1);
                    if (rope) {
                        double c = tables[0][p][i];
                        double s = tables[1][p][i];
                        o.set(dst + 2 * i, x0 * c - x1 * s);
                        o.set(dst + 2 * i + 1, x1 * c + x0 * s);
                    } else {
                        o.set(dst + 2 * i, x0);
                        o.set(dst + 2 * i + 1, x1);
                    }
                }
            }
        });
    }

    @Override
    public void splitHeadsBackward(Tensor dHeads, Tensor dx, int numHeads, int miniBatch, boolean rope) {
        CpuTensor dh = CpuTensor.of(dHeads);
        CpuTensor o = CpuTensor.of(dx);
        int batch = dh.dim(0);
        int seqLen = dh.dim(2);
        int f = dh.dim(3);
        if (dh.dim(1) != numHeads) {
            throw new IllegalArgumentException("splitHeadsBackward: " + dh + " for " + numHeads + " heads");
        }
        requireSameSize(dh, o, "splitHeadsBackward");
        double[][][] tables = ropeTables(miniBatch, f);
        IntStream.range(0, batch * seqLen).parallel().forEach(bt -> {
            int b = bt / seqLen;
            int t = bt % seqLen;
            int p = t % miniBatch;
            for (int h = 0; h < numHeads; h++) {
                int dst = bt * numHeads * f + h * f;
                int src = ((b * numHeads + h) * seqLen + t) * f;
                for (int i = 0; i < f / 2; i++) {
                    double d0 = dh.get(src + 2 * i);
                    double d1 = dh.get(src + 2 * i + 1);
                    if (rope) {
                        // The transpose of the rotation: rotate by −angle.
                        double c = tables[0][p][i];
                        double s = tables[1][p][i];
                        o.set(dst + 2 * i, d0 * c + d1 * s);
                        o.set(dst + 2 * i + 1, d1 * c - d0 * s);
                    } else {
                        o.set(dst + 2 * i, d0);
                        o.set(dst + 2 * i + 1, d1);
                    }
                }
            }
        });
    }

    private static double sigmoid(double z) {
        return 1 / (1 + Math.exp(-z));
    }

    @Override
    public void tttLearningRate(Tensor x, Tensor weight, Tensor bias, Tensor lr) {
        CpuTensor in = CpuTensor.of(x);
        CpuTensor w = CpuTensor.of(weight);
        CpuTensor bs = CpuTensor.of(bias);
        CpuTensor o = CpuTensor.of(lr);
        int heads = w.dim(0);
        int d = w.length() / heads;
        int f = d / heads;
        int batch = o.dim(0);
        int seqLen = o.dim(2);
        requireSize(in, (long) batch * seqLen * d, "tttLearningRate x");
        requireSize(bs, heads, "tttLearningRate bias");
        IntStream.range(0, batch * seqLen).parallel().forEach(bt -> {
            int b = bt / seqLen;
            int t = bt % seqLen;
            for (int h = 0; h < heads; h++) {
                double z = bs.get(h);
                for (int j = 0; j < d; j++) z += (double) in.get(bt * d + j) * w.get(h * d + j);
                o.set((b * heads + h) * seqLen + t, sigmoid(z) * ModelConfig.BASE_LR / f);
            }
        });
    }

    @Override
    public void tttLearningRateBackward(Tensor x, Tensor weight, Tensor lr, Tensor dLr, Tensor dx, Tensor dWeight,
            Tensor dBias) {
        CpuTensor in = CpuTensor.of(x);
        CpuTensor w = CpuTensor.of(weight);
        CpuTensor rate = CpuTensor.of(lr);
        CpuTensor dRate = CpuTensor.of(dLr);
        CpuTensor dIn = CpuTensor.of(dx);
        CpuTensor dw = CpuTensor.of(dWeight);
        CpuTensor db = CpuTensor.of(dBias);
        int heads = w.dim(0);
        int d = w.length() / heads;
        double scale = ModelConfig.BASE_LR / (d / heads);
        int batch = rate.dim(0);
        int seqLen = rate.dim(2);
        // lr = scale·σ(z):  dz = dlr · lr · (1 − lr / scale)
        double[] dz = new double[batch * heads * seqLen];
        for (int i = 0; i < dz.length; i++) dz[i] = dRate.get(i) * rate.get(i) * (1 - rate.get(i) / scale);
        IntStream.range(0, batch * seqLen).parallel().forEach(bt -> {
            int b = bt / seqLen;
            int t = bt % seqLen;
            for (int j = 0; j < d; j++) {
                double s = 0;
                for (int h = 0; h < heads; h++) s += dz[(b * heads + h) * seqLen + t] * w.get(h * d + j);
                dIn.add(bt * d + j, s);
            }
        });
        IntStream.range(0, heads).parallel().forEach(h -> {
            double[] sw = new double[d];
            double sb = 0;
            for (int bt = 0; bt < batch * seqLen; bt++) {
                double g = dz[((bt / seqLen) * heads + h) * seqLen + bt % seqLen];
                sb += g;
                for (int j = 0; j < d; j++) sw[j] += g * in.get(bt * d + j);
            }
            for (int j = 0; j < d; j++) dw.add(h * d + j, sw[j]);
            db.add(h, sb);
        });
    }

    @Override
    public void tokenEta(Tensor tokenIdx, Tensor tok) {
        CpuTensor idx = CpuTensor.of(tokenIdx);
        CpuTensor o = CpuTensor.of(tok);
        requireSameSize(idx, o, "tokenEta");
        for (int k = 0; k < o.length(); k++) o.set(k, Math.max(0.0, 1.0 / (k + 1) + idx.get(k)));
    }

    @Override
    public void tokenEtaBackward(Tensor tokenIdx, Tensor dTok, Tensor dTokenIdx) {
        CpuTensor idx = CpuTensor.of(tokenIdx);
        CpuTensor dt = CpuTensor.of(dTok);
        CpuTensor di = CpuTensor.of(dTokenIdx);
        requireSameSize(idx, dt, "tokenEtaBackward");
        requireSameSize(idx, di, "tokenEtaBackward");
        // As the reference's clamp_min: the gradient passes where the input is >= 0.
        for (int k = 0; k < idx.length(); k++) {
            if (1.0 / (k + 1) + idx.get(k) >= 0) di.add(k, dt.get(k));
        }
    }

    // ---------------------------------------------------------------- inner loop

    @Override
    public void innerForward(InnerInputs in, Tensor out, Tensor checkpoints, int interval, Tensor lastState) {
        if (checkpoints != null && interval < 1) throw new IllegalArgumentException("checkpoint interval " + interval);
        new InnerScan(in).forward(CpuTensor.of(out), checkpoints == null ? null : CpuTensor.of(checkpoints), interval,
                lastState == null ? null : CpuTensor.of(lastState));
    }

    @Override
    public void innerBackward(InnerInputs in, Tensor checkpoints, int interval, Tensor dOut, InnerGrads grads) {
        if (interval < 1) throw new IllegalArgumentException("checkpoint interval " + interval);
        new InnerScan(in).backward(CpuTensor.of(checkpoints), interval, CpuTensor.of(dOut), grads);
    }

    // ---------------------------------------------------------------- feed-forward

    @Override
    public void swiglu(Tensor gate, Tensor up, Tensor out) {
        CpuTensor g = CpuTensor.of(gate);
        CpuTensor u = CpuTensor.of(up);
        CpuTensor o = CpuTensor.of(out);
        requireSameSize(g, u, "swiglu");
        requireSameSize(g, o, "swiglu");
        IntStream.range(0, o.length()).parallel().forEach(i -> {
            double x = g.get(i);
            o.set(i, x * sigmoid(x) * u.get(i));
        });
    }

    @Override
    public void swigluBackward(Tensor gate, Tensor up, Tensor dOut, Tensor dGate, Tensor dUp) {
        CpuTensor g = CpuTensor.of(gate);
        CpuTensor u = CpuTensor.of(up);
        CpuTensor dy = CpuTensor.of(dOut);
        CpuTensor dg = CpuTensor.of(dGate);
        CpuTensor du = CpuTensor.of(dUp);
        requireSameSize(g, u, "swigluBackward");
        requireSameSize(g, dy, "swigluBackward");
        requireSameSize(g, dg, "swigluBackward");
        requireSameSize(g, du, "swigluBackward");
        // silu(x) = x·σ(x), silu′(x) = σ(x)·(1 + x·(1 − σ(x)))
        IntStream.range(0, g.length()).parallel().forEach(i -> {
            double x = g.get(i);
            double s = sigmoid(x);
            dg.set(i, dy.get(i) * u.get(i) * s * (1 + x * (1 - s)));
            du.set(i, dy.get(i) * x * s);
        });
    }

    // ---------------------------------------------------------------- checks

    private static int[] ids(TokenIds ids) {
        if (ids instanceof CpuTokenIds c) return c.ids();
        throw new IllegalArgumentException("token ids from another backend");
    }

    private static void requireSize(CpuTensor t, long size, String what) {
        if (t.length() != size) throw new IllegalArgumentException(what + ": expected " + size + " elements, got " + t);
    }

    private static void requireSameSize(CpuTensor a, CpuTensor b, String what) {
        if (a.length() != b.length()) throw new IllegalArgumentException(what + ": size mismatch " + a + " vs " + b);
    }
}
