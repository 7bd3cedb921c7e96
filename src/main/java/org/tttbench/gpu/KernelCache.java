package org.tttbench.gpu;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;

/**
 * Kernels compiled at run time, kept on disk so that a shape compiled once is loaded, not
 * compiled again, by the next run.
 *
 * <p>The folder is, first found: the system property {@code tttbench.cacheDir} (one run's
 * choice, {@code java -Dtttbench.cacheDir=…}); the environment variable
 * {@code TTTBENCH_CACHE_DIR}; {@code $XDG_CACHE_HOME/tttbench}; {@code ~/.cache/tttbench}.
 *
 * <p>An entry is named by the SHA-256 of everything that decides the code (see {@link Key}),
 * so a changed input is a new entry and nothing is ever invalidated. It is written to a
 * temporary file in the same folder and renamed over its final name, which is atomic: processes
 * and threads filling the same entry at once each see no entry or a whole one, never part of one.
 * Each entry also ends in a checksum of its content, so one damaged some other way (a crash
 * before the data reached the disk) reads as a miss and is compiled and written again.
 *
 * <p>A folder that cannot be created, read or written turns the cache off for the rest of the
 * run with one notice; kernels are then compiled every time, and the run goes on.
 */
public final class KernelCache {

    /** The start of every entry: the format, so a later one can tell itself from this. */
    private static final byte[] MAGIC = "tttkc001".getBytes(StandardCharsets.US_ASCII);
    private static final int CHECKSUM_BYTES = 32;

    /**
     * What decides the code a compile makes: the source, every header by name, all the
     * options, the architecture, and which compiler (name and exact version) made it.
     */
    public record Key(String source, Map<String, String> headers, List<String> options, String architecture,
            String compilerName, String compilerVersion) {

        public Key {
            headers = Map.copyOf(headers);
            options = List.copyOf(options);
        }

        /** The key of {@code compiler.compile(…, source, headers, extraOptions)}, with every option that passes. */
        public static Key of(RuntimeCompiler compiler, String source, Map<String, String> headers, List<String> extraOptions) {
            return new Key(source, headers, compiler.options(extraOptions), compiler.architecture(), compiler.name(),
                    compiler.version());
        }

        /**
         * The SHA-256 of every field in hex. Each string goes in after its length, so no two
         * different keys feed the same bytes ("ab" + "c" is not "a" + "bc"); headers go in by
         * name order, so the map's own order does not matter; options keep theirs, which does.
         */
        public String digest() {
            MessageDigest sha = sha256();
            add(sha, source);
            Map<String, String> sorted = new TreeMap<>(headers);
            addCount(sha, sorted.size());
            for (var h : sorted.entrySet()) {
                add(sha, h.getKey());
                add(sha, h.getValue());
            }
            addCount(sha, options.size());
            for (String o : options) add(sha, o);
            add(sha, architecture);
            add(sha, compilerName);
            add(sha, compilerVersion);
            return HexFormat.of().formatHex(sha.digest());
        }

        private static void add(MessageDigest sha, String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            addCount(sha, b.length);
            sha.update(b);
        }

        private static void addCount(MessageDigest sha, long n) {
            sha.update(ByteBuffer.allocate(Long.BYTES).putLong(n).array());
        }
    }

    private final Path dir;
    private final PrintStream notices;
    private final AtomicBoolean off = new AtomicBoolean();

    /**
     * A cache in {@code dir}, created when first written.
     *
     * @param notices where the one line goes if the folder turns out to be unusable
     */
    public KernelCache(Path dir, PrintStream notices) {
        this.dir = dir;
        this.notices = notices;
    }

    /** The cache in the folder the class comment names, with notices on stderr. */
    public static KernelCache standard() {
        return new KernelCache(folder(System.getProperty("tttbench.cacheDir"), System.getenv(),
                System.getProperty("user.home")), System.err);
    }

    /** The folder for a given property value, environment and home folder (the rule in the class comment). */
    static Path folder(String property, Map<String, String> env, String home) {
        if (property != null && !property.isBlank()) return Path.of(property);
        String explicit = env.get("TTTBENCH_CACHE_DIR");
        if (explicit != null && !explicit.isBlank()) return Path.of(explicit);
        String xdg = env.get("XDG_CACHE_HOME");
        if (xdg != null && !xdg.isBlank()) return Path.of(xdg, "tttbench");
        return Path.of(home, ".cache", "tttbench");
    }

    public Path folder() {
        return dir;
    }

    /**
     * The code stored for {@code key}, or else what {@code compile} returns, stored for next time.
     * Failures of {@code compile} itself go to the caller; nothing is stored for them.
     */
    public byte[] getOrCompile(Key key, Supplier<byte[]> compile) {
        if (off.get()) return compile.get();
        Path entry = dir.resolve(key.digest() + ".bin");
        byte[] stored = read(entry);
        if (stored != null) return stored;
        byte[] code = compile.get();
        if (!off.get()) write(entry, code);
        return code;
    }

    /** The entry's code; null when there is none or it is damaged. */
    private byte[] read(Path entry) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(entry);
        } catch (NoSuchFileException e) {
            return null;
        } catch (IOException | SecurityException e) {
            turnOff("cannot read " + entry + " (" + e + ")");
            return null;
        }
        return decode(bytes);
    }

    private void write(Path entry, byte[] code) {
        Path tmp = null;
        try {
            Files.createDirectories(dir);
            tmp = Files.createTempFile(dir, entry.getFileName() + ".", ".tmp");
            Files.write(tmp, encode(code));
            Files.move(tmp, entry, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            tmp = null;
        } catch (IOException | SecurityException e) {
            turnOff("cannot write in " + dir + " (" + e + ")");
        } finally {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException | SecurityException e) {
                    // The folder is already reported; a stray temporary file is harmless.
                }
            }
        }
    }

    private void turnOff(String why) {
        if (off.compareAndSet(false, true)) {
            notices.println("tttbench: kernel cache off, compiling kernels every run: " + why);
        }
    }

    /** MAGIC, the code, then the SHA-256 of the code. */
    static byte[] encode(byte[] code) {
        ByteBuffer b = ByteBuffer.allocate(MAGIC.length + code.length + CHECKSUM_BYTES);
        b.put(MAGIC).put(code).put(sha256().digest(code));
        return b.array();
    }

    /** The code of an entry, or null when it is not a whole entry of this format. */
    static byte[] decode(byte[] entry) {
        if (entry.length < MAGIC.length + CHECKSUM_BYTES) return null;
        if (!Arrays.equals(entry, 0, MAGIC.length, MAGIC, 0, MAGIC.length)) return null;
        byte[] code = Arrays.copyOfRange(entry, MAGIC.length, entry.length - CHECKSUM_BYTES);
        byte[] sum = sha256().digest(code);
        return Arrays.equals(sum, 0, CHECKSUM_BYTES, entry, entry.length - CHECKSUM_BYTES, entry.length) ? code : null;
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java runtime has SHA-256", e);
        }
    }
}
