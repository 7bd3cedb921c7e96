package org.tttbench.sweep;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import org.tttbench.io.AtomicFile;

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
            paths = s.sorted().toList();
        }
        for (Path p : paths) {
            String name = p.getFileName().toString();
            if (name.startsWith(".")) continue; // temporaries, claims and hidden files are not results
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

    /**
     * Whether the configuration already has a result or a tombstone: a sweep does not run it
     * again. Only a regular file counts; a directory of that name is no result.
     */
    public boolean isDone(Config c) {
        return Files.isRegularFile(dir.resolve(c.resultName())) || Files.isRegularFile(dir.resolve(c.tombstoneName()));
    }

    /** Why the configuration's files cannot be written (its name is taken by something else), or null. */
    public String obstacle(Config c) {
        for (String name : List.of(c.resultName(), c.tombstoneName())) {
            Path p = dir.resolve(name);
            if (Files.exists(p, LinkOption.NOFOLLOW_LINKS) && !Files.isRegularFile(p)) {
                return p + " exists and is not a regular file; remove it to run this configuration";
            }
        }
        return null;
    }

    /**
     * Fails unless files can be created in the directory (made if missing): a sweep checks
     * before its first run, not after hours of benchmarks whose results it cannot keep.
     */
    public void checkWritable() throws IOException {
        Files.createDirectories(dir);
        // A name of its own: several sweeps (even of one process) may check one directory at once.
        Path probe = Files.createTempFile(dir, ".write-test-", "");
        Files.delete(probe);
    }

    /** Stores a result line: the line as the sweep keeps it, and any tombstone of an earlier try removed. */
    public void writeResult(Config c, String storedLine) throws IOException {
        AtomicFile.write(dir.resolve(c.resultName()), storedLine + "\n");
        Files.deleteIfExists(dir.resolve(c.tombstoneName()));
    }

    public void writeTombstone(Config c, List<String> lastLines) throws IOException {
        AtomicFile.write(dir.resolve(c.tombstoneName()), String.join("\n", lastLines) + "\n");
    }

    /** Removes temporaries that a killed sweep of this host left (see {@link AtomicFile}). */
    public void removeStaleTemporaries() throws IOException {
        AtomicFile.removeStaleTemporaries(dir);
    }

    /** Deletes every tombstone, so the next sweep retries those runs. Returns how many. */
    public int clearFailures() throws IOException {
        return delete(list().of(ResultFile.Kind.FAILED));
    }

    /** Deletes every invalid result file, so the next sweep runs it again. Returns how many. */
    public int cleanInvalid() throws IOException {
        return delete(list().of(ResultFile.Kind.INVALID));
    }

    /** Deletes the files; a directory that bears a result's name is left for its owner to look at. */
    private static int delete(List<ResultFile> files) {
        int n = 0;
        for (ResultFile f : files) {
            if (Files.isDirectory(f.path(), LinkOption.NOFOLLOW_LINKS)) continue;
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
}
