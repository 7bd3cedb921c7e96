package org.tttbench.harness;

import java.io.PrintStream;
import java.util.Objects;
import java.util.function.UnaryOperator;
import org.tttbench.backend.Backend;
import org.tttbench.gpu.GpuBackend;

/**
 * How a benchmark issues its timed work: every op from the host, one call each ("eager"), or
 * the whole run recorded once in setup into a device graph and replayed with one call
 * ("graph"). On a GPU an op issued through FFM costs a few microseconds of host time, a
 * replayed kernel about one; a forward of hundreds of ops would otherwise time the host. The
 * recorded ops are the eager ones, on the same buffers, so a replay computes the same bits.
 *
 * <p>Only a GPU backend records; on the CPU the choice is ignored and the work runs eagerly.
 * When recording fails (an op that is not plain stream work: an allocation, a copy to the
 * host, a synchronize), the benchmark times eager issue and says so in one line.
 */
public final class TimedWork {

    /** What a run is issued as. */
    public enum Launch {
        EAGER("eager"),
        GRAPH("graph");

        private final String label;

        Launch(String label) {
            this.label = label;
        }

        public String label() {
            return label;
        }
    }

    private final Runnable issue;
    private final Runnable sync;
    private final Launch launch;

    private TimedWork(Runnable issue, Runnable sync, Launch launch) {
        this.issue = issue;
        this.sync = sync;
        this.launch = launch;
    }

    /**
     * Prepares {@code work} for timing on {@code be}. On a GPU backend it runs once eagerly first
     * (what ops set up on first use, and a first warm-up), so that a failure of the work itself
     * is told apart from a failure to record it; then, with {@code graph}, it is recorded. On the
     * CPU nothing runs here.
     */
    public static TimedWork prepare(Backend be, Runnable work, boolean graph, PrintStream log) {
        UnaryOperator<Runnable> recorder = be instanceof GpuBackend g ? g::graph : null;
        return prepare(work, be::synchronize, recorder, graph, log);
    }

    /**
     * The decision itself: {@code recorder} turns work into its replay (null where the backend
     * cannot record).
     */
    static TimedWork prepare(Runnable work, Runnable sync, UnaryOperator<Runnable> recorder, boolean graph,
            PrintStream log) {
        Objects.requireNonNull(work, "work");
        Objects.requireNonNull(sync, "sync");
        if (recorder == null) return new TimedWork(work, sync, Launch.EAGER);
        work.run();
        sync.run();
        if (!graph) {
            log.println("tttbench: launch: eager, every op issued from the host");
            return new TimedWork(work, sync, Launch.EAGER);
        }
        Runnable replay;
        try {
            replay = recorder.apply(work);
        } catch (RuntimeException e) {
            log.println("tttbench: launch: eager: the run could not be recorded as a graph (" + message(e) + ")");
            // What the failed recording left on the stream is waited out before eager runs follow.
            sync.run();
            return new TimedWork(work, sync, Launch.EAGER);
        }
        if (replay == null) throw new IllegalStateException("the recorder returned no replay");
        log.println("tttbench: launch: graph, each run one replay of the recorded ops");
        return new TimedWork(replay, sync, Launch.GRAPH);
    }

    private static String message(Throwable e) {
        String m = e.getMessage();
        return m == null || m.isBlank() ? e.getClass().getSimpleName() : m.lines().findFirst().orElse(m);
    }

    public Launch launch() {
        return launch;
    }

    /** Issues one run and waits for the device: the timed region. */
    public void run() {
        issue.run();
        sync.run();
    }
}
