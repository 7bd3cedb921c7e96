package org.tttbench.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The on-disk cache of compiled kernels: hits, misses, what the key covers, races, and unusable folders. */
class KernelCacheTest {

    @TempDir
    Path tmp;

    private final ByteArrayOutputStream noticeBytes = new ByteArrayOutputStream();
    private final PrintStream notices = new PrintStream(noticeBytes, true, StandardCharsets.UTF_8);

    private static final KernelCache.Key KEY = new KernelCache.Key("extern \"C\" __global__ void k() {}",
            Map.of("tttbench_hip.h", "#pragma once"), List.of("--offload-arch=gfx90a", "-O3"), "gfx90a", "hiprtc",
            "9.0 (libamdhip64.so.5.2.21153)");

    private String notices() {
        return noticeBytes.toString(StandardCharsets.UTF_8);
    }

    /** A compile that counts its calls and returns {@code code}. */
    private static Supplier<byte[]> counting(AtomicInteger calls, byte[] code) {
        return () -> {
            calls.incrementAndGet();
            return code.clone();
        };
    }

    @Test
    void aSecondLookupIsAHitInThisRunAndTheNext() {
        AtomicInteger compiles = new AtomicInteger();
        byte[] code = {0x7f, 'E', 'L', 'F', 1, 2, 3};
        KernelCache cache = new KernelCache(tmp.resolve("cache"), notices);
        assertArrayEquals(code, cache.getOrCompile(KEY, counting(compiles, code)));
        assertArrayEquals(code, cache.getOrCompile(KEY, counting(compiles, code)));
        assertArrayEquals(code, new KernelCache(tmp.resolve("cache"), notices).getOrCompile(KEY, counting(compiles, code)),
                "another run reads what this one wrote");
        assertEquals(1, compiles.get());
        assertEquals("", notices());
        assertTrue(Files.isRegularFile(tmp.resolve("cache").resolve(KEY.digest() + ".bin")));
    }

    @Test
    void anotherKeyIsAMiss() {
        AtomicInteger compiles = new AtomicInteger();
        KernelCache cache = new KernelCache(tmp, notices);
        cache.getOrCompile(KEY, counting(compiles, new byte[] {1}));
        KernelCache.Key other = new KernelCache.Key(KEY.source() + " ", KEY.headers(), KEY.options(), KEY.architecture(),
                KEY.compilerName(), KEY.compilerVersion());
        assertArrayEquals(new byte[] {2}, cache.getOrCompile(other, counting(compiles, new byte[] {2})));
        assertEquals(2, compiles.get());
    }

    @Test
    void theKeyChangesWithEachInput() {
        var k = KEY;
        List<KernelCache.Key> keys = List.of(k,
                new KernelCache.Key(k.source() + "\n", k.headers(), k.options(), k.architecture(), k.compilerName(), k.compilerVersion()),
                new KernelCache.Key(k.source(), Map.of("other.h", "#pragma once"), k.options(), k.architecture(), k.compilerName(), k.compilerVersion()),
                new KernelCache.Key(k.source(), Map.of("tttbench_hip.h", "#pragma once\n"), k.options(), k.architecture(), k.compilerName(), k.compilerVersion()),
                new KernelCache.Key(k.source(), Map.of("tttbench_hip.h", "#pragma once", "b.h", ""), k.options(), k.architecture(), k.compilerName(), k.compilerVersion()),
                new KernelCache.Key(k.source(), Map.of(), k.options(), k.architecture(), k.compilerName(), k.compilerVersion()),
                new KernelCache.Key(k.source(), k.headers(), List.of("--offload-arch=gfx90a", "-O2"), k.architecture(), k.compilerName(), k.compilerVersion()),
                new KernelCache.Key(k.source(), k.headers(), List.of("-O3", "--offload-arch=gfx90a"), k.architecture(), k.compilerName(), k.compilerVersion()),
                new KernelCache.Key(k.source(), k.headers(), List.of("--offload-arch=gfx90a", "-O", "3"), k.architecture(), k.compilerName(), k.compilerVersion()),
                new KernelCache.Key(k.source(), k.headers(), k.options(), "gfx942", k.compilerName(), k.compilerVersion()),
                new KernelCache.Key(k.source(), k.headers(), k.options(), k.architecture(), "nvrtc", k.compilerVersion()),
                new KernelCache.Key(k.source(), k.headers(), k.options(), k.architecture(), k.compilerName(), "9.0 (libhiprtc.so.6)"));
        Set<String> digests = new HashSet<>();
        for (KernelCache.Key key : keys) digests.add(key.digest());
        assertEquals(keys.size(), digests.size(), "every input changes the digest");

        Map<String, String> ab = new LinkedHashMap<>();
        ab.put("a.h", "1");
        ab.put("b.h", "2");
        Map<String, String> ba = new LinkedHashMap<>();
        ba.put("b.h", "2");
        ba.put("a.h", "1");
        assertEquals(new KernelCache.Key("s", ab, List.of(), "sm_90", "nvrtc", "13.0").digest(),
                new KernelCache.Key("s", ba, List.of(), "sm_90", "nvrtc", "13.0").digest(), "header order does not count");
        assertTrue(KEY.digest().matches("[0-9a-f]{64}"), KEY.digest());
    }

    @Test
    void theFolderRule() {
        Map<String, String> env = Map.of("TTTBENCH_CACHE_DIR", "/e/cache", "XDG_CACHE_HOME", "/xdg");
        assertEquals(Path.of("/p/cache"), KernelCache.folder("/p/cache", env, "/home/u"));
        assertEquals(Path.of("/e/cache"), KernelCache.folder(null, env, "/home/u"));
        assertEquals(Path.of("/xdg/tttbench"), KernelCache.folder("", Map.of("XDG_CACHE_HOME", "/xdg"), "/home/u"));
        assertEquals(Path.of("/home/u/.cache/tttbench"), KernelCache.folder(null, Map.of(), "/home/u"));
    }

    @Test
    void aDamagedEntryIsCompiledAndWrittenAgain() throws IOException {
        AtomicInteger compiles = new AtomicInteger();
        KernelCache cache = new KernelCache(tmp, notices);
        byte[] code = new byte[1000];
        Arrays.fill(code, (byte) 7);
        cache.getOrCompile(KEY, counting(compiles, code));
        Path entry = tmp.resolve(KEY.digest() + ".bin");
        byte[] whole = Files.readAllBytes(entry);
        Files.write(entry, Arrays.copyOf(whole, whole.length - 100)); // as if cut short
        assertArrayEquals(code, cache.getOrCompile(KEY, counting(compiles, code)));
        assertEquals(2, compiles.get());
        assertArrayEquals(whole, Files.readAllBytes(entry), "the entry is whole again");
        assertNull(KernelCache.decode(new byte[] {1, 2, 3}));
    }

    /**
     * Several writers (each its own cache, as separate processes would be) fill one entry at the
     * same moment, round after round, while a reader reads the file as it is: whenever the file
     * exists it must be one writer's whole entry.
     */
    @Test
    void concurrentFillsNeverShowAPartEntry() throws Exception {
        int writers = 4;
        int rounds = 40;
        int size = 2 << 20; // large enough that a write takes several system calls
        Path entry = tmp.resolve(KEY.digest() + ".bin");
        AtomicBoolean done = new AtomicBoolean();
        AtomicInteger seen = new AtomicInteger();
        CyclicBarrier start = new CyclicBarrier(writers);
        ExecutorService pool = Executors.newFixedThreadPool(writers + 1);
        try {
            Future<String> reader = pool.submit(() -> {
                while (!done.get()) {
                    byte[] bytes;
                    try {
                        bytes = Files.readAllBytes(entry);
                    } catch (NoSuchFileException e) {
                        continue;
                    }
                    byte[] code = KernelCache.decode(bytes);
                    if (code == null || !wholeCodeOfOneWriter(code, size)) return "a part entry of " + bytes.length + " bytes";
                    seen.incrementAndGet();
                }
                return null;
            });
            List<Future<?>> fills = new ArrayList<>();
            for (int w = 0; w < writers; w++) {
                byte id = (byte) (w + 1);
                fills.add(pool.submit(() -> {
                    for (int r = 0; r < rounds; r++) {
                        start.await(30, TimeUnit.SECONDS);
                        byte[] code = new KernelCache(tmp, notices).getOrCompile(KEY, () -> {
                            byte[] c = new byte[size];
                            Arrays.fill(c, id);
                            return c;
                        });
                        if (!wholeCodeOfOneWriter(code, size)) throw new AssertionError("a writer got a part entry");
                        start.await(30, TimeUnit.SECONDS);
                        if (id == 1) Files.deleteIfExists(entry); // the next round fills it afresh
                    }
                    return null;
                }));
            }
            for (Future<?> f : fills) f.get(120, TimeUnit.SECONDS);
            done.set(true);
            assertNull(reader.get(30, TimeUnit.SECONDS));
        } finally {
            done.set(true);
            pool.shutdownNow();
        }
        assertTrue(seen.get() > 0, "the reader never saw an entry");
        assertEquals("", notices());
        try (var files = Files.list(tmp)) {
            assertEquals(List.of(), files.filter(p -> p.toString().endsWith(".tmp")).toList(), "temporary files left");
        }
    }

    private static boolean wholeCodeOfOneWriter(byte[] code, int size) {
        if (code.length != size) return false;
        for (byte b : code) if (b != code[0]) return false;
        return code[0] != 0;
    }

    @Test
    void aFolderThatCannotBeWrittenCompilesWithOneNotice() throws IOException {
        Path notAFolder = Files.writeString(tmp.resolve("file"), "x");
        KernelCache cache = new KernelCache(notAFolder.resolve("cache"), notices); // works even for root
        AtomicInteger compiles = new AtomicInteger();
        assertArrayEquals(new byte[] {5}, cache.getOrCompile(KEY, counting(compiles, new byte[] {5})));
        assertArrayEquals(new byte[] {5}, cache.getOrCompile(KEY, counting(compiles, new byte[] {5})));
        assertEquals(2, compiles.get(), "without a cache every lookup compiles");
        String text = notices();
        assertEquals(1, text.lines().count(), text);
        assertTrue(text.startsWith("tttbench: kernel cache off") && text.contains(notAFolder.toString()), text);
    }

    @Test
    void anEntryThatCannotBeReadCompilesWithOneNotice() throws IOException {
        Files.createDirectories(tmp.resolve(KEY.digest() + ".bin")); // reading a folder fails, for root too
        KernelCache cache = new KernelCache(tmp, notices);
        AtomicInteger compiles = new AtomicInteger();
        assertNotNull(cache.getOrCompile(KEY, counting(compiles, new byte[] {9})));
        assertNotNull(cache.getOrCompile(KEY, counting(compiles, new byte[] {9})));
        assertEquals(2, compiles.get());
        assertEquals(1, notices().lines().count(), notices());
    }
}
