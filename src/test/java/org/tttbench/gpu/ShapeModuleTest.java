package org.tttbench.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.tttbench.config.DType;

/**
 * A module compiled at run time for one shape, with the options the registry gives it, holds
 * exactly the entry points the registry takes from such a module (those with a
 * {@code _has_instance} size) of that stored type: none missing, and nothing else compiled.
 * Compiled here by nvcc to PTX, as NVRTC would (required in CI, which has nvcc).
 */
class ShapeModuleTest {

    @TempDir
    Path tmp;

    private Set<String> entries(Path nvcc, String module, List<String> options) throws IOException, InterruptedException {
        Path ptx = tmp.resolve(module + ".ptx");
        List<String> cmd = new ArrayList<>(List.of(nvcc.toString(), "-x", "cu", "-ptx", "-arch=compute_90", "-std=c++17",
                "-I", "hip"));
        cmd.addAll(options);
        cmd.addAll(List.of("hip/" + module + ".hip", "-o", ptx.toString()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes());
        assertEquals(0, p.waitFor(), module + " did not compile with " + options + ":\n" + log);
        Set<String> names = new TreeSet<>();
        Matcher m = Pattern.compile("\\.entry\\s+(\\w+)").matcher(Files.readString(ptx));
        while (m.find()) names.add(m.group(1));
        return names;
    }

    @Test
    void aModuleForOneShapeHoldsTheShapedScansOfItsTypeAlone() throws Exception {
        Assumptions.assumeTrue(Files.isDirectory(Path.of("hip")), "run from the project folder");
        Path nvcc = KernelBuildOutputTest.tool("nvcc", "/usr/local/cuda/bin");
        if (nvcc == null) {
            assertFalse("true".equals(System.getenv("CI")), "CI needs nvcc on the PATH");
            Assumptions.abort("nvcc not installed here");
        }
        KernelIndex index = KernelIndex.packaged();
        Assumptions.assumeFalse(index.launches().isEmpty(), "no kernels built (kernels.skip)");
        for (String module : List.of("ttt_linear", "ttt_mlp")) {
            Set<String> shaped = new TreeSet<>();
            for (KernelIndex.Launch l : index.launches().values()) {
                if (l.module().equals(module) && index.sizes().containsKey(l.name() + "_has_instance")) {
                    shaped.add(l.name() + "_" + KernelRegistry.suffix(DType.BFLOAT16));
                }
            }
            assertFalse(shaped.isEmpty(), module + " has kernels with compile-time shapes");
            assertEquals(shaped, entries(nvcc, module, KernelRegistry.shapeOptions(DType.BFLOAT16, 64, 32)), module);
        }
    }
}
