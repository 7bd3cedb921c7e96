package org.tttbench.sweep;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * A results directory: one file per configuration, named as SPEC §6 says. Every file appears
 * whole or not at all (written beside, then renamed), so a sweep killed at any moment leaves
 * nothing half-written, and several sweeps (shards) can share one directory.
 */
public final class ResultsDir {

    /** SPEC §6 CSV columns, in order. */
    public static final List<String> CSV_COLUMNS = List.of("implementation", "model_size", "ttt_type", "backward",
            "batch", "seq_len", "mini_batch", "dtype", "time_ms", "throughput", "checkpoint_interval", "failed",
            "inner_only");

    private static final String TEMP_MARK = ".tmp-";

    private final Path dir;

    public ResultsDir(Path dir) {
        this.dir = dir;
    }

    public Path path() {
        return dir;
    }

    /** The files of the directory, sorted by name, and the names that are not SPEC §6 names. */
    public record Listing(List<ResultFile> files, List<String> unrecognised) {

        public List<ResultFile> of(ResultFile.Kind kind) {
            return files.stream().filter(f -> f.kind() == kind).toList();
        }
    }

    public Listing list() throws IOException {
        List<ResultFile> files = new ArrayList<>();
        List<String> other = new ArrayList<>();
        if (!Files.isDirectory(dir)) return new Listing(files, other);
        List<Path> paths;
        try (Stream<Path> s = Files.list(dir)) {
            paths = s.filter(Files::isRegularFile).sorted().toList();
        }
        for (Path p : paths) {
            String name = p.getFileName().toString();
            if (name.startsWith(".")) continue; // temporaries and hidden files are not results
            Optional<Config.Named> named = Config.parseFileName(name);
            if (named.isEmpty()) {
                other.add(name);
                continue;
            }
            try {
                files.add(ResultFile.read(p, named.get()));
            } catch (NoSuchFileException e) {
                // removed between listing and reading (another sweep cleared it): not there
            }
        }
        return new Listing(List.copyOf(files), List.copyOf(other));
    }

    /** Whether the configuration already has a result or a tombstone: a sweep does not run it again. */
    public boolean isDone(Config c) {
        return Files.exists(dir.resolve(c.resultName())) || Files.exists(dir.resolve(c.tombstoneName()));
    }

    public void writeResult(Config c, String resultLine) throws IOException {
        writeAtomically(dir.resolve(c.resultName()), resultLine + "\n");
        Files.deleteIfExists(dir.resolve(c.tombstoneName()));
    }

    public void writeTombstone(Config c, List<String> lastLines) throws IOException {
        writeAtomically(dir.resolve(c.tombstoneName()), String.join("\n", lastLines) + "\n");
    }

    private void writeAtomically(Path target, String content) throws IOException {
        Files.createDirectories(dir);
        Path temp = dir.resolve("." + target.getFileName() + TEMP_MARK + Host.NAME + "-" + ProcessHandle.current().pid());
        try (FileChannel ch = FileChannel.open(temp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ch.write(java.nio.ByteBuffer.wrap(content.getBytes(StandardCharsets.UTF_8)));
            ch.force(true); // the rename must not reach the disk before the content does
        }
        Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    /**
     * Removes temporaries that a killed sweep of this host left. Other hosts' temporaries are
     * left alone: their writers may still be alive.
     */
    public void removeStaleTemporaries() throws IOException {
        if (!Files.isDirectory(dir)) return;
        String mark = TEMP_MARK + Host.NAME + "-";
        List<Path> stale;
        try (Stream<Path> s = Files.list(dir)) {
            stale = s.filter(p -> {
                String name = p.getFileName().toString();
                int at = name.lastIndexOf(mark);
                if (!name.startsWith(".") || at < 0) return false;
                try {
                    long pid = Long.parseLong(name.substring(at + mark.length()));
                    return ProcessHandle.of(pid).map(h -> !h.isAlive()).orElse(true);
                } catch (NumberFormatException e) {
                    return false;
                }
            }).toList();
        }
        for (Path p : stale) Files.deleteIfExists(p);
    }

    /** Deletes every tombstone, so the next sweep retries those runs. Returns how many. */
    public int clearFailures() throws IOException {
        return delete(list().of(ResultFile.Kind.FAILED));
    }

    /** Deletes every invalid result file, so the next sweep runs it again. Returns how many. */
    public int cleanInvalid() throws IOException {
        return delete(list().of(ResultFile.Kind.INVALID));
    }

    private static int delete(List<ResultFile> files) {
        int n = 0;
        for (ResultFile f : files) {
            try {
                if (Files.deleteIfExists(f.path())) n++;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return n;
    }

    /** SPEC §6 CSV: successful results and tombstones (as failed rows); invalid files are left out. */
    public static String csv(Listing listing) {
        StringBuilder sb = new StringBuilder(String.join(",", CSV_COLUMNS)).append('\n');
        for (ResultFile f : listing.files()) {
            if (f.kind() == ResultFile.Kind.INVALID) continue;
            Config c = f.config();
            boolean failed = f.kind() == ResultFile.Kind.FAILED;
            List<String> row = List.of(c.implementation(), c.modelSize(), c.tttType().flag(),
                    Boolean.toString(c.backward()), Integer.toString(c.batch()), Integer.toString(c.seqLen()),
                    Integer.toString(c.miniBatch()), c.dtype().flag(), failed ? "" : f.text("time_ms"),
                    failed ? "" : f.text("throughput"), Integer.toString(c.checkpointInterval()),
                    Boolean.toString(failed), Boolean.toString(c.innerOnly()));
            sb.append(String.join(",", row.stream().map(ResultsDir::csvField).toList())).append('\n');
        }
        return sb.toString();
    }

    private static String csvField(String s) {
        if (s.contains(",") || s.contains("\"") || s.contains("\n")) return "\"" + s.replace("\"", "\"\"") + "\"";
        return s;
    }

    /** This machine's name, to tell our temporaries from another host's in a shared directory. */
    static final class Host {
        static final String NAME = detect();

        private static String detect() {
            String env = System.getenv("HOSTNAME");
            if (env != null && !env.isBlank()) return clean(env);
            try {
                return clean(Files.readString(Path.of("/proc/sys/kernel/hostname")));
            } catch (IOException e) {
                return "host";
            }
        }

        private static String clean(String s) {
            return s.strip().replaceAll("[^A-Za-z0-9.]", ".");
        }
    }
}
