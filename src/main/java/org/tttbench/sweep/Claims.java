package org.tttbench.sweep;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import org.tttbench.io.AtomicFile;

/**
 * Claims on configurations in a shared results directory, so that sweeps sharing it (two
 * terminals, the tasks of a Slurm array on a shared file system) run each configuration once.
 * A sweep claims a configuration before it runs it by creating {@code .STEM.claim} with an
 * atomic create-new, which one creator wins, and removes the claim once the result or the
 * tombstone is there. A claim is stale, and is taken over, when the sweep that made it is gone
 * (same host, its process no longer alive) or when it is older than its run may take (that
 * sweep's timeout plus a minute to write the file, written into the claim): that sweep was
 * killed, or its host died.
 */
final class Claims {

    /** What a claim file holds: who runs the configuration, since when. */
    /**
     * @param until when the claim goes stale: its run's timeout, plus a minute to write the result
     * @param text  the file's content, to tell this claim from a later one
     */
    record Claim(Path file, String host, long pid, String processStart, Instant since, Instant until, String text) {

        @Override
        public String toString() {
            return host + " pid " + pid + " since " + since;
        }
    }

    /** A claim file is a line of JSON; an unreadable one older than this was never finished, by a writer now gone. */
    private static final Duration UNREADABLE_GRACE = Duration.ofSeconds(30);
    /** Time a timed-out run still needs to be killed and leave its tombstone. */
    private static final Duration WRITE_GRACE = Duration.ofMinutes(1);

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path dir;
    private final Duration runTimeout;
    private final long pid = ProcessHandle.current().pid();
    private final String processStart = processStart(ProcessHandle.current());

    /** @param runTimeout the longest a run of this sweep takes */
    Claims(Path dir, Duration runTimeout) {
        this.dir = dir;
        this.runTimeout = runTimeout;
    }

    static Path file(Path dir, Config c) {
        return dir.resolve("." + c.stem() + ".claim");
    }

    /** Our claim on {@code c}, or empty when a live claim of another sweep holds it. */
    Optional<Claim> acquire(Config c) throws IOException {
        Path file = file(dir, c);
        for (int attempt = 0; attempt < 3; attempt++) {
            Optional<Claim> mine = create(file);
            if (mine.isPresent()) return mine;
            Optional<Claim> holder = read(file);
            if (holder.isEmpty() && Files.exists(file)) return Optional.empty(); // being written right now
            if (holder.isPresent() && !isStale(holder.get())) return Optional.empty();
            if (holder.isPresent() && !takeOver(holder.get())) return Optional.empty();
            // stale and moved aside, or released meanwhile: try to create it again
        }
        return Optional.empty();
    }

    /** The live claim that holds {@code c} now, if any: for --status and --dry-run. */
    Optional<Claim> liveHolder(Config c) throws IOException {
        return read(file(dir, c)).filter(h -> !isStale(h));
    }

    /** Removes our claim, unless another sweep has taken it over meanwhile (then it is theirs now). */
    void release(Claim mine) throws IOException {
        Optional<Claim> now = read(mine.file());
        if (now.isPresent() && now.get().text().equals(mine.text())) Files.deleteIfExists(mine.file());
    }

    private Optional<Claim> create(Path file) throws IOException {
        ObjectNode o = JSON.createObjectNode();
        Instant now = Instant.now();
        o.put("host", AtomicFile.HOST).put("pid", pid).put("process_start", processStart)
                .put("since", now.toString()).put("until", now.plus(runTimeout).plus(WRITE_GRACE).toString());
        String text = o.toString();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8)));
            ch.force(true);
        } catch (FileAlreadyExistsException e) {
            return Optional.empty();
        }
        return Optional.of(parse(file, text).orElseThrow());
    }

    /** The claim in {@code file}; empty when there is none, or when it is still being written or unreadable. */
    private Optional<Claim> read(Path file) throws IOException {
        String text;
        try {
            // A claim is a short line; anything longer or not text is no claim of ours and is judged by its age.
            text = Files.size(file) > 4096 ? "" : Files.readString(file);
        } catch (NoSuchFileException e) {
            return Optional.empty();
        } catch (java.nio.charset.MalformedInputException e) {
            text = "";
        }
        Optional<Claim> claim = parse(file, text);
        if (claim.isEmpty() && olderThan(file, UNREADABLE_GRACE)) {
            // Unreadable and old: a creator killed between create and write. Stale by construction.
            return Optional.of(new Claim(file, "?", -1, "", Instant.EPOCH, Instant.EPOCH, text));
        }
        return claim;
    }

    private static Optional<Claim> parse(Path file, String text) {
        try {
            JsonNode n = JSON.readTree(text);
            if (n == null || !n.path("host").isTextual() || !n.path("pid").canConvertToLong()
                    || !n.path("since").isTextual() || !n.path("until").isTextual()) {
                return Optional.empty();
            }
            return Optional.of(new Claim(file, n.get("host").asText(), n.get("pid").asLong(),
                    n.path("process_start").asText(""), Instant.parse(n.get("since").asText()),
                    Instant.parse(n.get("until").asText()), text));
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    private boolean isStale(Claim c) {
        if (Instant.now().isAfter(c.until())) return true;
        if (!c.host().equals(AtomicFile.HOST)) return false; // another host's process cannot be seen from here
        // Gone, or the pid now belongs to another process (its start time differs).
        return ProcessHandle.of(c.pid()).map(h -> !h.isAlive() || !processStart(h).equals(c.processStart()))
                .orElse(true);
    }

    /**
     * Moves a stale claim aside, which only one sweep can do (the second finds nothing to move).
     * When what was moved is not the claim judged stale (another sweep took it over and made a
     * fresh one between our read and our move), the fresh one is put back.
     */
    private boolean takeOver(Claim stale) throws IOException {
        Path aside = stale.file().resolveSibling(stale.file().getFileName() + ".stale-" + AtomicFile.HOST + "-" + pid);
        try {
            Files.move(stale.file(), aside, StandardCopyOption.ATOMIC_MOVE);
        } catch (NoSuchFileException e) {
            return true; // someone else moved or released it; creating decides who runs
        }
        String moved = Files.readString(aside);
        if (moved.equals(stale.text())) {
            Files.delete(aside);
            return true;
        }
        try {
            Files.move(aside, stale.file()); // no replace: if yet another claim is there, it stands
        } catch (FileAlreadyExistsException e) {
            Files.delete(aside);
        }
        return false;
    }

    private static boolean olderThan(Path file, Duration age) throws IOException {
        try {
            return Files.getLastModifiedTime(file).toInstant().plus(age).isBefore(Instant.now());
        } catch (NoSuchFileException e) {
            return false;
        }
    }

    private static String processStart(ProcessHandle h) {
        return h.info().startInstant().map(Instant::toString).orElse("");
    }
}
