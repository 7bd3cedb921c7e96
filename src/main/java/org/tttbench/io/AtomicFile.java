package org.tttbench.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.stream.Stream;

/**
 * Files that appear whole or not at all: written to a temporary beside the target, forced to
 * disk, then renamed over it. A writer killed at any moment leaves the old file or the new
 * one, never half of one, so readers (a resumed sweep, a browser, another shard) can trust
 * what they find. The temporary is named {@code .NAME.tmp-HOST-PID}, so a later writer on the
 * same host can tell a dead writer's leftovers from a live one's.
 */
public final class AtomicFile {

    private static final String TEMPORARY_MARK = ".tmp-";

    /** This machine's name, to tell our files from another host's in a shared directory. */
    public static final String HOST = detectHost();

    private AtomicFile() {}

    public static void write(Path target, String content) throws IOException {
        write(target, content.getBytes(StandardCharsets.UTF_8));
    }

    public static void write(Path target, byte[] content) throws IOException {
        Path temp = target.resolveSibling("." + target.getFileName() + TEMPORARY_MARK + HOST + "-"
                + ProcessHandle.current().pid());
        try {
            try (FileChannel ch = FileChannel.open(temp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer buf = ByteBuffer.wrap(content);
                while (buf.hasRemaining()) ch.write(buf);
                ch.force(true); // the rename must not reach the disk before the content does
            }
            Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(temp); // only there when the write or the rename failed
        }
    }

    /**
     * Removes the temporaries that writers of this host left in {@code dir} when they were
     * killed. Other hosts' temporaries are left alone: their writers may still be alive.
     */
    public static void removeStaleTemporaries(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) return;
        String mark = TEMPORARY_MARK + HOST + "-";
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

    private static String detectHost() {
        String env = System.getenv("HOSTNAME");
        if (env != null && !env.isBlank()) return clean(env);
        try {
            return clean(Files.readString(Path.of("/proc/sys/kernel/hostname")));
        } catch (IOException e) {
            return "host";
        }
    }

    /** Host names go into file names: letters, digits and dots only. */
    private static String clean(String s) {
        return s.strip().replaceAll("[^A-Za-z0-9.]", ".");
    }
}
