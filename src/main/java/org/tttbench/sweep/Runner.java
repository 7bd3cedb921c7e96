package org.tttbench.sweep;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
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
 * Runs one benchmark process to its end or its timeout, and reads its result line. Only the
 * sweep writes into the results directory, never the child, so a child left behind by a
 * killed sweep cannot leave a file there.
 */
public final class Runner {

    /** How many lines of output a tombstone keeps (SPEC §6). */
    public static final int TAIL_LINES = 50;

    /**
     * What a run came to.
     *
     * @param resultLine the valid result line (null unless {@code ok})
     * @param tail       the last lines of stdout, then of stderr (50 in all)
     * @param verdict    why the run failed (null when {@code ok})
     */
    public record Outcome(boolean ok, String resultLine, List<String> tail, String verdict, Duration elapsed) {}

    /** Processes running now, so a sweep that is stopped can take them down with it. */
    private final Set<Process> live = ConcurrentHashMap.newKeySet();

    private volatile boolean stopping;

    public Outcome run(List<String> command, Map<String, String> env, Duration timeout) {
        long start = System.nanoTime();
        Tail tail = new Tail();
        Process process;
        try {
            ProcessBuilder pb = new ProcessBuilder(command);
            pb.environment().putAll(env);
            process = pb.start();
        } catch (IOException e) {
            return new Outcome(false, null, List.of(), "could not start " + command.getFirst() + ": " + e.getMessage(),
                    since(start));
        }
        live.add(process);
        try {
            process.getOutputStream().close(); // a benchmark reads nothing; EOF beats a hang
            Thread out = reader(process.getInputStream(), tail, true);
            Thread err = reader(process.getErrorStream(), tail, false);
            boolean finished = process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
            if (!finished) killTree(process.toHandle());
            // A grandchild that escaped the kill can hold the pipes open: do not wait for it forever.
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
            String line = tail.resultLine();
            if (line == null) {
                return new Outcome(false, null, tail.lines(),
                        "exited 0 without a result line (no stdout line starting with '{')", elapsed);
            }
            if (line.getBytes(StandardCharsets.UTF_8).length < ResultFile.MIN_VALID_BYTES) {
                return new Outcome(false, null, tail.lines(), "result line under " + ResultFile.MIN_VALID_BYTES + " bytes",
                        elapsed);
            }
            if (ResultFile.parseObject(line) == null) {
                return new Outcome(false, null, tail.lines(), "result line is not a JSON object", elapsed);
            }
            return new Outcome(true, line, tail.lines(), null, elapsed);
        } catch (InterruptedException e) {
            killTree(process.toHandle());
            Thread.currentThread().interrupt();
            return new Outcome(false, null, tail.lines(), "stopped with the sweep", since(start));
        } catch (IOException e) {
            killTree(process.toHandle());
            return new Outcome(false, null, tail.lines(), "lost the process's output: " + e.getMessage(), since(start));
        } finally {
            live.remove(process);
        }
    }

    /** Kills every running benchmark and its children; runs from then on report "stopped". */
    public void stopAll() {
        stopping = true;
        for (Process p : live) killTree(p.toHandle());
    }

    public boolean stopping() {
        return stopping;
    }

    /**
     * Kills a process and everything it started. The descendants are listed before the
     * parent dies, because once it is gone they are reparented and can no longer be found.
     */
    static void killTree(ProcessHandle root) {
        List<ProcessHandle> descendants = root.descendants().toList();
        root.destroyForcibly();
        for (ProcessHandle d : descendants) {
            List<ProcessHandle> late = d.descendants().toList(); // started while we were listing
            d.destroyForcibly();
            late.forEach(ProcessHandle::destroyForcibly);
        }
    }

    private static Thread reader(InputStream in, Tail tail, boolean stdout) {
        Thread t = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) tail.add(line, stdout);
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
     * The last lines of stdout and of stderr, and the last stdout line that starts with '{'.
     * Two pipes carry no common order, so a tombstone gets stdout's last lines and then
     * stderr's, 50 in all: errors go to stderr, and a chatty stdout must not push them out.
     */
    private static final class Tail {
        private final Deque<String> out = new ArrayDeque<>();
        private final Deque<String> err = new ArrayDeque<>();
        private String resultLine;

        synchronized void add(String line, boolean stdout) {
            if (stdout && line.startsWith("{")) resultLine = line;
            Deque<String> lines = stdout ? out : err;
            lines.addLast(line);
            if (lines.size() > TAIL_LINES) lines.removeFirst();
        }

        synchronized List<String> lines() {
            List<String> all = new ArrayList<>(out);
            all.addAll(err);
            return new ArrayList<>(all.subList(Math.max(0, all.size() - TAIL_LINES), all.size()));
        }

        synchronized String resultLine() {
            return resultLine;
        }
    }
}
