package org.tttbench.model;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.tttbench.backend.InnerGrads;
import org.tttbench.backend.Backend;
import org.tttbench.backend.Tensor;
import org.tttbench.config.BenchConfig;
import org.tttbench.config.ModelConfig;
import org.tttbench.io.WeightsLoader;

/**
 * One benchmark of SPEC §4, built in setup (weights, inputs, every buffer) so that
 * {@link #run()} only issues the timed work.
 */
public final class Workload {

    /** The four benchmarks of SPEC §4, named as the JMH methods are. */
    public enum Kind {
        FORWARD("forward"),
        BACKWARD("backward"),
        INNER_FORWARD("innerForward"),
        INNER_BACKWARD("innerBackward");

        private final String method;

        Kind(String method) {
            this.method = method;
        }

        public String method() {
            return method;
        }

        public static Kind of(boolean backward, boolean innerOnly) {
            if (innerOnly) return backward ? INNER_BACKWARD : INNER_FORWARD;
            return backward ? BACKWARD : FORWARD;
        }

        public static Kind byMethod(String method) {
            for (Kind k : values()) {
                if (k.method.equals(method)) return k;
            }
            throw new IllegalArgumentException("no benchmark method " + method);
        }
    }

    public static final long SEED = 20240704L;

    private final Kind kind;
    private final TttModel model;
    private final InnerProblem inner;

    private Workload(Kind kind, TttModel model, InnerProblem inner) {
        this.kind = kind;
        this.model = model;
        this.inner = inner;
    }

    public static Workload build(Backend backend, BenchConfig config, Kind kind) {
        ModelConfig m = config.model();
        boolean training = kind == Kind.BACKWARD || kind == Kind.INNER_BACKWARD;
        if (kind == Kind.INNER_FORWARD || kind == Kind.INNER_BACKWARD) {
            return new Workload(kind, null, new InnerProblem(backend, m, config.batch(), config.seqLen(), SEED, training,
                    config.checkpointInterval()));
        }
        Parameters weights = new Parameters(backend, ParameterSpec.model(m));
        if (config.weights() != null) {
            try {
                WeightsLoader.load(config.weights(), weights, backend);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        } else {
            weights.initialize(backend, SEED);
        }
        int[] ids = randomTokens(m.vocab(), config.batch() * config.seqLen(), SEED);
        TttModel model = new TttModel(backend, m, weights, ids, config.batch(), config.seqLen(), training,
                config.checkpointInterval());
        return new Workload(kind, model, null);
    }

    static int[] randomTokens(int vocab, int count, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] ids = new int[count];
        for (int i = 0; i < count; i++) ids[i] = r.nextInt(vocab);
        return ids;
    }

    public Kind kind() {
        return kind;
    }

    /** Issues the timed work; the caller synchronizes. */
    public void run() {
        switch (kind) {
            case FORWARD -> model.forward();
            case BACKWARD -> {
                model.forward();
                model.backward();
            }
            case INNER_FORWARD -> inner.forward();
            case INNER_BACKWARD -> inner.backward();
        }
    }

    /** A tensor that the timed work wrote, so the work cannot be discarded. */
    public Tensor output() {
        return switch (kind) {
            case FORWARD -> model.logits();
            case BACKWARD -> model.gradients().get("model.embed_tokens.weight");
            case INNER_FORWARD -> inner.out();
            case INNER_BACKWARD -> inner.gradients().xq();
        };
    }

    /**
     * Every tensor a run writes that the benchmark's result consists of (SPEC §4), by name: the
     * logits, and for a backward every parameter's gradient; the inner output, and for the inner
     * backward every gradient it produces. Two ways of issuing the same run must agree on all.
     */
    public Map<String, Tensor> outputs() {
        Map<String, Tensor> out = new LinkedHashMap<>();
        switch (kind) {
            case FORWARD -> out.put("logits", model.logits());
            case BACKWARD -> {
                out.put("logits", model.logits());
                model.gradients().byName().forEach((name, t) -> out.put("grad." + name, t));
            }
            case INNER_FORWARD -> out.put("inner.out", inner.out());
            case INNER_BACKWARD -> {
                out.put("inner.out", inner.out());
                InnerGrads g = inner.gradients();
                put(out, "inner.grad.XQ", g.xq());
                put(out, "inner.grad.XK", g.xk());
                put(out, "inner.grad.XV", g.xv());
                put(out, "inner.grad.ttt_lr_eta", g.lr());
                put(out, "inner.grad.token_eta", g.tok());
                put(out, "inner.grad.W1", g.w1());
                put(out, "inner.grad.b1", g.b1());
                put(out, "inner.grad.W2", g.w2());
                put(out, "inner.grad.b2", g.b2());
                put(out, "inner.grad.ttt_norm_weight", g.normWeight());
                put(out, "inner.grad.ttt_norm_bias", g.normBias());
            }
        }
        return out;
    }

    private static void put(Map<String, Tensor> out, String name, Tensor t) {
        if (t != null) out.put(name, t);
    }
}
