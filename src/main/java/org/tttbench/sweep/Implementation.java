package org.tttbench.sweep;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.tttbench.config.DType;
import org.tttbench.config.Preset;

/**
 * One implementation a plan can sweep: how to start it, what it adds to the environment, and
 * which configurations it can run at all (the Triton kernels driver, say, has no backward and
 * no inner-only benchmark; the JAX and PyTorch reference drivers reject
 * {@code --checkpoint-interval}). Configurations outside {@code supports} are listed as not
 * runnable with the reason instead of being started only to fail.
 *
 * @param name     the plan's name, part of every result file name
 * @param command  a shell command that accepts the standard flags, or null for this suite
 *                 started as a fresh JVM on the sweep's own class path
 * @param env      variables added to each run's environment
 */
public record Implementation(String name, String command, Map<String, String> env, Supports supports) {

    public Implementation {
        env = Map.copyOf(env);
    }

    /** This suite as a plan that does not mention it gets it. */
    public static Implementation builtin(String name) {
        return new Implementation(name, null, Map.of(), Supports.ALL);
    }

    public boolean isBuiltin() {
        return command == null;
    }

    /**
     * What an implementation can run; the plan's {@code supports} object, every key optional.
     *
     * @param backward      the directions it has, as {@code --backward} values (fwd = false)
     * @param innerOnly     whether it has the inner-only benchmarks ({@code --inner-only})
     * @param dtypes        the storage types it accepts
     * @param modelSizes    the presets it knows
     * @param checkpointing whether it accepts {@code --checkpoint-interval}
     */
    public record Supports(List<Boolean> backward, boolean innerOnly, List<DType> dtypes, List<Preset> modelSizes,
                           boolean checkpointing) {

        public static final Supports ALL = new Supports(List.of(false, true), true, Arrays.asList(DType.values()),
                Preset.ALL, true);

        public Supports {
            backward = List.copyOf(backward);
            dtypes = List.copyOf(dtypes);
            modelSizes = List.copyOf(modelSizes);
        }

        /** Why the implementation cannot run this configuration, or null when it can. */
        public String unsupportedReason(String implementation, Config c) {
            if (!backward.contains(c.backward())) {
                return implementation + " has no " + (c.backward() ? "backward" : "forward") + " benchmark";
            }
            if (c.innerOnly() && !innerOnly) return implementation + " has no inner-only benchmark";
            if (!dtypes.contains(c.dtype())) return implementation + " does not run dtype " + c.dtype().flag();
            if (!modelSizes.contains(Preset.byName(c.modelSize()))) {
                return implementation + " does not run model size " + c.modelSize();
            }
            if (c.checkpointFlag() && !checkpointing) {
                return implementation + " does not accept --checkpoint-interval (its pass lists checkpoint_intervals)";
            }
            return null;
        }
    }
}
