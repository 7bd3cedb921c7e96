package org.tttbench.gpu;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * What scripts/build-kernels.sh left on the class path: every hip/*.hip for every required
 * target of each vendor whose compiler is installed (both in CI), each a real object of its kind.
 */
class KernelBuildOutputTest {

    /** {@code tool} on the PATH or in one of {@code dirs}, or null. */
    static Path tool(String tool, String... dirs) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (!d.isEmpty() && Files.isExecutable(Path.of(d, tool))) return Path.of(d, tool);
        }
        for (String d : dirs) if (Files.isExecutable(Path.of(d, tool))) return Path.of(d, tool);
        return null;
    }

    private static boolean toolchain(String tool, String... dirs) {
        return tool(tool, dirs) != null;
    }

    private static List<String> sources() throws IOException {
        Path hip = Path.of("hip");
        Assumptions.assumeTrue(Files.isDirectory(hip), "run from the project folder");
        List<String> names = new ArrayList<>();
        try (var s = Files.list(hip)) {
            s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".hip"))
                    .forEach(n -> names.add(n.substring(0, n.length() - 4)));
        }
        return names;
    }

    private static byte[] resource(String path) throws IOException {
        try (InputStream in = KernelImages.class.getResourceAsStream("/kernels/" + path)) {
            if (in == null) fail("kernels/" + path + " is not on the class path");
            return in.readAllBytes();
        }
    }

    private static void checkVendor(String vendor, List<String> dirs, String ext, byte[] magic) throws IOException {
        List<String> listed = KernelImages.index().stream().map(KernelImages.Image::path).toList();
        List<String> missing = new ArrayList<>();
        for (String name : sources()) {
            for (String dir : dirs) {
                String path = vendor + "/" + dir + "/" + name + (dir.startsWith("compute_") ? ".ptx" : "." + ext);
                if (!listed.contains(path)) {
                    missing.add(path);
                    continue;
                }
                byte[] bytes = resource(path);
                if (path.endsWith(".ptx")) {
                    String text = new String(bytes, StandardCharsets.UTF_8);
                    assertTrue(text.contains(".target sm_90") && text.contains(".entry"), path + " is not PTX for sm_90");
                } else {
                    assertTrue(startsWith(bytes, magic) || startsWith(bytes, "\u007fELF".getBytes(StandardCharsets.ISO_8859_1)),
                            path + " is not a " + ext + " object");
                }
            }
        }
        assertTrue(missing.isEmpty(), "not built: " + missing);
    }

    private static boolean startsWith(byte[] b, byte[] prefix) {
        if (b.length < prefix.length) return false;
        for (int i = 0; i < prefix.length; i++) if (b[i] != prefix[i]) return false;
        return true;
    }

    @Test
    void amdObjectsForEveryKernel() throws IOException {
        boolean required = "true".equals(System.getenv("CI"));
        Assumptions.assumeTrue(required || toolchain("hipcc", "/opt/rocm/bin"), "hipcc not installed here");
        checkVendor("amd", List.of("gfx90a"), "co", "__CLANG_OFFLOAD_BUNDLE__".getBytes(StandardCharsets.US_ASCII));
    }

    @Test
    void nvidiaObjectsForEveryKernel() throws IOException {
        boolean required = "true".equals(System.getenv("CI"));
        Assumptions.assumeTrue(required || toolchain("nvcc", "/usr/local/cuda/bin"), "nvcc not installed here");
        checkVendor("nvidia", List.of("sm_80", "sm_90", "compute_90"), "cubin", "\u007fELF".getBytes(StandardCharsets.ISO_8859_1));
    }
}
