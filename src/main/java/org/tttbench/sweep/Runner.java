package org.tttbench.sweep;

import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * Runs one benchmark process to its end or its timeout, and judges its result line. Only the
 * sweep writes into the results directory, never the child, so a child left behind by a
 * killed sweep cannot leave a file there. Each child leads a process group of its own, and
 * the group is killed when the run ends, however it ends: on a timeout, when the sweep is
 * stopped, and after a normal exit too, so no helper it left holds the GPU for the next run.
 */
public final class Runner {

    /** How many lines of output a tombstone keeps (SPEC §6). */
    public static final int TAIL_LINES = 50;

    /** A tombstone shows this much of any one line. */
    private static final int TAIL_LINE_CHARS = 2000;

    /**
     * What a run came to.
     *
     * @param result  the result line (null unless {@code ok})
     * @param tail    the last lines of stdout, then of stderr (50 in all)
     * @param verdict why the run failed (null when {@code ok})
     */
    public record Outcome(boolean ok, ResultLine result, List<String> tail, String verdict, Duration elapsed) {}

    /** Processes running now, so a sweep that is stopped can take them down with it. */
    private final Set<Process> live = ConcurrentHashMap.newKeySet();

    private volatile boolean stopping;

    /**
     * Runs {@code invocation} with {@code deviceEnv} added to its environment and judges its
     * last stdout line as a result of {@code asked}.
     */
    public Outcome run(Implementations.Invocation invocation, Map<String, String> deviceEnv, Config asked,
                       Duration timeout) {
        long start = System.nanoTime();
        Tail tail = new Tail();
        boolean ownGroup = ProcessGroups.available();
        Process process;
        try {
            ProcessBuilder pb = new ProcessBuilder(ProcessGroups.inOwnGroup(invocation.command()));
            pb.environment().putAll(invocation.env());
            pb.environment().putAll(deviceEnv); // the device the sweep gives the run wins over the plan's
            process = pb.start();
        } catch (IOException e) {
            return new Outcome(false, null, List.of(), "could not start " + invocation.command().getFirst() + ": "
                    + e.getMessage(), since(start));
        }
        live.add(process);
        try {
            process.getOutputStream().close(); // a benchmark reads nothing; EOF beats a hang
            Thread out = reader(process.getInputStream(), tail, true);
            Thread err = reader(process.getErrorStream(), tail, false);
            boolean finished = process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
            ProcessGroups.killTree(process.toHandle(), ownGroup);
            // A helper that escaped the kill can hold the pipes open: do not wait for it forever.
            out.join(5_000);
            err.join(5_000);
            Duration elapsed = since(start);
            if (stopping) return new Outcome(false, null, tail.lines(), "stopped with the sweep", elapsed);
            if (!finished) {
                return new Outcome(false, null, tail.lines(), "timed out after " + timeout.toSeconds()
                        + " s (process tree killed)", elapsed);
            }
            int status = process.waitFor();
            if (status != 0) return new Outcome(false, null, tail.lines(), "exit status " + status, elapsed);
            BoundedLines.Line last = tail.lastStdout();
            if (last != null && last.cut()) {
                return new Outcome(false, null, tail.lines(), "exited 0, but its last stdout line is " + last.bytes()
                        + " bytes, over the " + (BoundedLines.MAX_LINE_BYTES >> 20) + " MiB a result line may be",
                        elapsed);
            }
            try {
                ResultLine result = ResultLine.parse(last == null ? null : last.text(), asked);
                return new Outcome(true, result, tail.lines(), null, elapsed);
            } catch (ResultLine.NotAResult e) {
                return new Outcome(false, null, tail.lines(), "exited 0, but " + e.getMessage(), elapsed);
            }
        } catch (InterruptedException e) {
            ProcessGroups.killTree(process.toHandle(), ownGroup);
            Thread.currentThread().interrupt();
            return new Outcome(false, null, tail.lines(), "stopped with the sweep", since(start));
        } catch (IOException e) {
            ProcessGroups.killTree(process.toHandle(), ownGroup);
            return new Outcome(false, null, tail.lines(), "lost the process's output: " + e.getMessage(), since(start));
        } finally {
            live.remove(process);
        }
    }

    /** Kills every running benchmark and its process group; runs from then on report "stopped". */
    public void stopAll() {
        stopping = true;
        for (Process p : live) ProcessGroups.killTree(p.toHandle(), ProcessGroups.available());
    }

    public boolean stopping() {
        return stopping;
    }

    private static Thread reader(InputStream in, Tail tail, boolean stdout) {
        Thread t = new Thread(() -> {
            try (in) {
                BoundedLines.read(in, line -> tail.add(line, stdout));
            } catch (IOException e) {
                // the process was killed while we read: what arrived so far is kept
            }
        }, stdout ? "sweep-stdout" : "sweep-stderr");
        t.setDaemon(true);
        t.start();
        return t;
    }

    private static Duration since(long startNanos) {
        return Duration.ofNanos(System.nanoTime() - startNanos);
    }

    /**
     * The last lines of stdout and of stderr, and the last stdout line that is not blank (the
     * result line, if the run printed one). Two pipes carry no common order, so a tombstone
     * gets stdout's last lines and then stderr's, 50 in all: errors go to stderr, and a chatty
     * stdout must not push them out.
     */
    private static final class Tail {
        private final Deque<String> out = new ArrayDeque<>();
        private final Deque<String> err = new ArrayDeque<>();
        private BoundedLines.Line lastStdout;

        synchronized void add(BoundedLines.Line line, boolean stdout) {
            if (stdout && !line.text().isBlank()) lastStdout = line;
            Deque<String> lines = stdout ? out : err;
            lines.addLast(line.shown(TAIL_LINE_CHARS));
            if (lines.size() > TAIL_LINES) lines.removeFirst();
        }

        synchronized List<String> lines() {
            List<String> all = new ArrayList<>(out);
            all.addAll(err);
            return new ArrayList<>(all.subList(Math.max(0, all.size() - TAIL_LINES), all.size()));
        }

        synchronized BoundedLines.Line lastStdout() {
            return lastStdout;
        }
    }
}
