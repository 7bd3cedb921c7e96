package org.tttbench.model;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Predicate;
import java.util.stream.IntStream;
import org.tttbench.backend.Backend;
import org.tttbench.backend.Tensor;

/**
 * A set of named tensors on one backend with the reference's parameter names: the model's
 * weights, or their gradients (same names, same shapes).
 */
public final class Parameters {

    private final List<ParameterSpec> specs;
    private final Map<String, Tensor> tensors = new LinkedHashMap<>();

    /**
     * Every tensor in one block of the backend's memory, in state-dict order (see
     * {@link Backend#allocateAdjacent}): the gradients are then zeroed in one pass, and the
     * weights read together by one product (Q, K and V; gate and up) lie at a fixed stride.
     */
    public Parameters(Backend backend, List<ParameterSpec> specs) {
        this(backend, specs, name -> true);
    }

    /**
     * As {@link #Parameters(Backend, List)}, with the tensors {@code placeFirst} names at the
     * start of the block and the others after them, each group in state-dict order: a set of
     * gradients of which only some are accumulated can have just those zeroed, as one range.
     */
    public Parameters(Backend backend, List<ParameterSpec> specs, Predicate<String> placeFirst) {
        this.specs = List.copyOf(specs);
        List<ParameterSpec> order = new ArrayList<>();
        for (ParameterSpec s : specs) if (placeFirst.test(s.name())) order.add(s);
        for (ParameterSpec s : specs) if (!placeFirst.test(s.name())) order.add(s);
        List<Tensor> all = backend.allocateAdjacent(backend.dtype(), order.stream().map(ParameterSpec::shape).toList());
        Map<String, Tensor> byName = new HashMap<>();
        for (int i = 0; i < order.size(); i++) byName.put(order.get(i).name(), all.get(i));
        for (ParameterSpec s : specs) tensors.put(s.name(), byName.get(s.name()));
    }

    public List<ParameterSpec> specs() {
        return specs;
    }

    /** Tensors by name, in state-dict order. */
    public Map<String, Tensor> byName() {
        return tensors;
    }

    public Tensor get(String name) {
        Tensor t = tensors.get(name);
        if (t == null) throw new IllegalArgumentException("no parameter named " + name);
        return t;
    }

    /** The tensor if present (W2 and b2 exist for TTT-MLP only), else null. */
    public Tensor find(String name) {
        return tensors.get(name);
    }

    /**
     * The benchmark init of SPEC §2: matrices N(0, 0.02), biases and token offsets zero, norm
     * gains one. Each tensor draws from its own stream, derived from the seed and its name, so
     * the same seed gives the same weights whatever the order or the backend.
     */
    public void initialize(Backend backend, long seed) {
        for (ParameterSpec s : specs) {
            float[] host = new float[Math.toIntExact(s.size())];
            switch (s.init()) {
                case ONE -> java.util.Arrays.fill(host, 1f);
                case ZERO -> { }
                case NORMAL -> fillNormal(host, 0.02, seed ^ s.name().hashCode() * 0x9E3779B97F4A7C15L);
            }
            backend.upload(host, tensors.get(s.name()));
        }
    }

    /** Fills with N(0, std²) in parallel chunks, each from a stream split off the seed in order. */
    public static void fillNormal(float[] out, double std, long seed) {
        final int chunk = 1 << 16;
        int chunks = (out.length + chunk - 1) / chunk;
        SplittableRandom root = new SplittableRandom(seed);
        SplittableRandom[] streams = new SplittableRandom[chunks];
        for (int i = 0; i < chunks; i++) streams[i] = root.split();
        IntStream.range(0, chunks).parallel().forEach(c -> {
            SplittableRandom r = streams[c];
            int end = Math.min(out.length, (c + 1) * chunk);
            for (int i = c * chunk; i < end; i++) out[i] = (float) (r.nextGaussian() * std);
        });
    }

    /** Sets every tensor to zero (gradients, before a backward pass), in one op. */
    public void zero(Backend backend) {
        backend.fillAll(List.copyOf(tensors.values()), 0f);
    }
}
