package org.tttbench.config;

/**
 * How a benchmark is run, as opposed to what it measures ({@link Workload}): the timed runs,
 * where, and what is printed.
 *
 * @param warmup       untimed runs first (each one full run of the benchmark)
 * @param repeats      timed runs; the result is their mean
 * @param json         print the one-line JSON result instead of a summary
 * @param comment      ignored; shows in process lists and in the result line (null: none)
 * @param backend      where the ops run
 * @param graph        GPU: time one replay of the run recorded as a device graph (false: every op issued)
 * @param deviceWarmup GPU: run the work back to back in setup until the time of a run settles
 * @param verbose      keep JMH's own progress output on stderr
 */
public record RunOptions(int warmup, int repeats, boolean json, String comment, BackendKind backend, boolean graph,
        boolean deviceWarmup, boolean verbose) {

    public RunOptions {
        if (warmup < 0) throw new IllegalArgumentException("--warmup must be >= 0, got " + warmup);
        if (repeats <= 0) throw new IllegalArgumentException("--repeats must be a positive integer, got " + repeats);
    }

    /** The defaults of SPEC §5: 3 warmups, 5 repeats, a summary, the best backend there is. */
    public static RunOptions defaults() {
        return new RunOptions(3, 5, false, null, BackendKind.AUTO, true, true, false);
    }
}
