package org.tttbench.verify;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.tttbench.backend.Backend;
import org.tttbench.backend.InnerGrads;
import org.tttbench.backend.InnerInputs;
import org.tttbench.backend.Tensor;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;
import org.tttbench.model.InnerProblem;
import org.tttbench.model.ParameterSpec;
import org.tttbench.model.Parameters;

/**
 * The random inputs of every check, made once here for the forward and the backward checks: the
 * same host data on the backend under test and on the reference, rounded first to the storage of
 * the run (so that a float32 twin pass computes on exactly what the 16-bit pass stores), and
 * outputs poisoned with NaN on the backend under test, so that an element an op never writes fails.
 */
final class Fixtures {

    /** The same tensor on the backend under test and on the reference. */
    record Pair(Tensor t, Tensor r) {
    }

    /** Inner-scan inputs on both backends. */
    record Inner(InnerInputs t, InnerInputs r) {
    }

    /** Gradients of an inner backward on both backends. */
    record Grads(InnerGrads t, InnerGrads r) {
    }

    /** A model's parameters on both backends. */
    record Weights(Parameters t, Parameters r) {
    }

    /**
     * Where an accumulated (+=) output starts. Each accumulating op is checked from both: from zero
     * the increment alone is judged, so a missing or partial one fails however small it is next to
     * the buffer; from random values an op that overwrites instead of adding fails.
     */
    enum Start {
        ZERO("onto zero"),
        RANDOM("onto random");

        final String label;

        Start(String label) {
            this.label = label;
        }
    }

    private final Backend test;
    private final Backend ref;
    private final DType inputs;
    private final SplittableRandom rnd;

    /** @param inputs what every input in the run's storage is rounded to before it is uploaded */
    Fixtures(Backend test, Backend ref, DType inputs, long seed) {
        this.test = test;
        this.ref = ref;
        this.inputs = inputs;
        this.rnd = new SplittableRandom(seed);
    }

    long nextSeed() {
        return rnd.nextLong();
    }

    double gaussian() {
        return rnd.nextGaussian();
    }

    float[] normal(long n, double mean, double std) {
        float[] x = new float[Math.toIntExact(n)];
        for (int i = 0; i < x.length; i++) x[i] = (float) (mean + std * rnd.nextGaussian());
        return x;
    }

    /** Host data in the run's storage (rounded to it) on both backends. */
    Pair input(float[] host, int... shape) {
        float[] stored = host.clone();
        inputs.round(stored);
        Pair p = new Pair(test.allocate(shape), ref.allocate(shape));
        test.upload(stored, p.t());
        ref.upload(stored, p.r());
        return p;
    }

    /** Host data kept in float32 whatever the run stores (norm statistics, inner states). */
    Pair float32Input(float[] host, int... shape) {
        Pair p = new Pair(test.allocate(DType.FLOAT32, shape), ref.allocate(DType.FLOAT32, shape));
        test.upload(host, p.t());
        ref.upload(host, p.r());
        return p;
    }

    Pair random(double mean, double std, int... shape) {
        return input(normal(count(shape), mean, std), shape);
    }

    /** An output in the run's storage: NaN on the backend under test. */
    Pair output(int... shape) {
        return poisoned(new Pair(test.allocate(shape), ref.allocate(shape)));
    }

    /** An output kept in float32 (norm statistics, inner states): NaN on the backend under test. */
    Pair float32Output(int... shape) {
        return poisoned(new Pair(test.allocate(DType.FLOAT32, shape), ref.allocate(DType.FLOAT32, shape)));
    }

    private Pair poisoned(Pair p) {
        test.fill(p.t(), Float.NaN);
        return p;
    }

    /** An accumulated output: zeros, or N(0, std) as {@link Start} says. */
    Pair start(Start start, double std, int... shape) {
        return start == Start.ZERO ? input(new float[Math.toIntExact(count(shape))], shape) : random(0, std, shape);
    }

    /**
     * Tensors of these shapes placed back to back on each backend ({@link Backend#allocateAdjacent}):
     * outputs (NaN on the backend under test) or N(0, 1) inputs.
     */
    List<Pair> adjacent(List<int[]> shapes, boolean output) {
        List<Tensor> t = test.allocateAdjacent(test.dtype(), shapes);
        List<Tensor> r = ref.allocateAdjacent(ref.dtype(), shapes);
        List<Pair> out = new ArrayList<>();
        for (int i = 0; i < shapes.size(); i++) {
            Pair p = new Pair(t.get(i), r.get(i));
            if (output) {
                test.fill(p.t(), Float.NaN);
            } else {
                float[] host = normal(count(shapes.get(i)), 0, 1);
                inputs.round(host);
                test.upload(host, p.t());
                ref.upload(host, p.r());
            }
            out.add(p);
        }
        return out;
    }

    /** {@code count} token ids below {@code vocab}. */
    int[] tokens(int count, int vocab) {
        int[] ids = new int[count];
        for (int i = 0; i < count; i++) ids[i] = rnd.nextInt(vocab);
        return ids;
    }

    /** Rows of N(0, 1) shifted by N(0, 9) and scaled by U(0.5, 1.5) each, so that a norm's mean and variance both matter. */
    Pair shiftedRows(int rows, int d) {
        float[] host = normal((long) rows * d, 0, 1);
        for (int row = 0; row < rows; row++) {
            double shift = 3 * rnd.nextGaussian();
            double scale = 0.5 + rnd.nextDouble();
            for (int c = 0; c < d; c++) host[row * d + c] = (float) (shift + scale * host[row * d + c]);
        }
        return input(host, rows, d);
    }

    /** learnable_token_idx [K], N(0, 0.09), with one entry at −2, which the clamp holds at zero. */
    Pair tokenIndex(int k) {
        float[] idx = normal(k, 0, 0.3);
        idx[Math.min(1, k - 1)] = -2f;
        return input(idx, k);
    }

    /** The learning-rate projection [H, 1, D] and bias [H, 1], at the spread that puts sigmoid off its flat ends. */
    Pair[] learningRateWeights(int h, int d) {
        return new Pair[] {random(0, 1.5 / Math.sqrt(d), h, 1, d), random(0, 0.5, h, 1)};
    }

    /** Random inner-scan inputs with the magnitudes the model produces, one token scale at zero. */
    Inner innerInputs(ModelConfig cfg, int batch, int seqLen) {
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
        // Off 1/(k+1) but positive, the last one above all (the state update reads it), one held at zero by the clamp.
        for (int i = 0; i < k; i++) tokHost[i] = (float) (Math.exp(0.3 * rnd.nextGaussian()) / (i + 1));
        tokHost[Math.min(2, k - 1)] = 0f;
        Pair tok = input(tokHost, k);
        Pair w1 = random(0, 0.02, h, f, f1);
        Pair b1 = random(0, 0.02, h, 1, f1);
        Pair w2 = mlp ? random(0, 0.02, h, f1, f) : new Pair(null, null);
        Pair b2 = mlp ? random(0, 0.02, h, 1, f) : new Pair(null, null);
        Pair nw = random(1, 0.1, h, f);
        Pair nb = random(0, 0.1, h, f);
        return new Inner(
                new InnerInputs(cfg.tttType(), batch, h, seqLen, f, k, xq.t(), xk.t(), xv.t(), lr.t(), tok.t(), w1.t(),
                        b1.t(), w2.t(), b2.t(), nw.t(), nb.t()),
                new InnerInputs(cfg.tttType(), batch, h, seqLen, f, k, xq.r(), xk.r(), xv.r(), lr.r(), tok.r(), w1.r(),
                        b1.r(), w2.r(), b2.r(), nw.r(), nb.r()));
    }

    /** Gradients of an inner backward: the inputs' poisoned (overwritten), the parameters' from {@code start} (accumulated). */
    Grads innerGrads(ModelConfig cfg, int batch, int seqLen, Start start) {
        int h = cfg.heads();
        int f = cfg.headDim();
        int f1 = cfg.innerHidden();
        boolean mlp = cfg.tttType() == TttType.MLP;
        Pair dq = output(batch, h, seqLen, f);
        Pair dk = output(batch, h, seqLen, f);
        Pair dv = output(batch, h, seqLen, f);
        Pair dlr = output(batch, h, seqLen);
        Pair dtok = output(cfg.miniBatch());
        Pair dw1 = start(start, 0.1, h, f, f1);
        Pair db1 = start(start, 0.1, h, 1, f1);
        Pair dw2 = mlp ? start(start, 0.1, h, f1, f) : new Pair(null, null);
        Pair db2 = mlp ? start(start, 0.1, h, 1, f) : new Pair(null, null);
        Pair dnw = start(start, 0.1, h, f);
        Pair dnb = start(start, 0.1, h, f);
        return new Grads(
                new InnerGrads(dq.t(), dk.t(), dv.t(), dlr.t(), dtok.t(), dw1.t(), db1.t(), dw2.t(), db2.t(), dnw.t(),
                        dnb.t()),
                new InnerGrads(dq.r(), dk.r(), dv.r(), dlr.r(), dtok.r(), dw1.r(), db1.r(), dw2.r(), db2.r(), dnw.r(),
                        dnb.r()));
    }

    /**
     * A model's parameters off their trivial init (norm gains not one, biases not zero, one token
     * offset at −2, which the clamp holds at zero), the same on both backends.
     */
    Weights weights(ModelConfig cfg) {
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
            inputs.round(host);
            test.upload(host, tw.get(s.name()));
            ref.upload(host, rw.get(s.name()));
        }
        return new Weights(tw, rw);
    }

    /**
     * An {@link InnerProblem} draws and uploads its own inputs; on a float32 backend of a twin pass
     * they are rounded here to the run's storage, as the 16-bit backend stores them.
     */
    void roundInputs(Backend be, InnerProblem p) {
        InnerInputs in = p.inputs();
        for (Tensor t : new Tensor[] {in.xq(), in.xk(), in.xv(), in.lr(), in.tok(), in.w1(), in.b1(), in.w2(), in.b2(),
                in.normWeight(), in.normBias()}) {
            if (t == null) continue;
            float[] host = be.download(t);
            inputs.round(host);
            be.upload(host, t);
        }
    }

    static long count(int... shape) {
        long n = 1;
        for (int d : shape) n *= d;
        return n;
    }
}
