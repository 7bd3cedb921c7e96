package org.tttbench.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.tttbench.config.DType;

/** Modules the build holds no object of for the device: compiled at run time, once per stored type, or a clear error. */
class KernelRegistryTest {

    @TempDir
    Path tmp;

    private static final KernelIndex INDEX = KernelIndex.parse("""
            norms @launch norms_rmsnorm 256 1 min(ROWS,65535) 1 0
            norms @launch norms_layernorm 256 1 min(ROWS,65535) 1 0
            """);
    /** What the build made: norms for sm_90 only. */
    private static final List<KernelImages.Image> BUILT = List.of(KernelImages.Image.parse("nvidia/sm_90/norms.cubin"));

    private final List<List<String>> compiles = new ArrayList<>();
    private final List<byte[]> loaded = new ArrayList<>();
    private final List<String> functions = new ArrayList<>();
    private final ByteArrayOutputStream noticeBytes = new ByteArrayOutputStream();

    /** A CUDA device of {@code arch} whose run-time compiler is {@code compiler}; it records loads and lookups. */
    private GpuRuntime device(String arch, Optional<RuntimeCompiler> compiler) {
        return (GpuRuntime) Proxy.newProxyInstance(GpuRuntime.class.getClassLoader(), new Class<?>[] {GpuRuntime.class},
                (proxy, m, args) -> switch (m.getName()) {
                    case "name" -> "cuda";
                    case "architecture" -> arch;
                    case "deviceName" -> "a device";
                    case "multiprocessorCount" -> 132;
                    case "maxSharedMemoryPerBlock" -> 232448;
                    case "compiler" -> compiler;
                    case "loadModule" -> {
                        loaded.add((byte[]) args[0]);
                        yield (long) loaded.size();
                    }
                    case "function" -> {
                        functions.add(args[0] + ":" + args[1]);
                        yield 100L + functions.size();
                    }
                    default -> throw new UnsupportedOperationException(m.getName());
                });
    }

    private RuntimeCompiler nvrtc(String arch) {
        return new RuntimeCompiler() {
            public String name() {
                return "nvrtc";
            }

            public String version() {
                return "13.0";
            }

            public String architecture() {
                return arch;
            }

            public List<String> options(List<String> extra) {
                List<String> all = new ArrayList<>(List.of("--gpu-architecture=" + arch));
                all.addAll(extra);
                return all;
            }

            public byte[] compile(String programName, String source, Map<String, String> headers, List<String> options) {
                assertTrue(source.contains("norms_rmsnorm"), "the module's own source");
                compiles.add(options);
                return ("code " + options).getBytes(StandardCharsets.UTF_8);
            }
        };
    }

    private KernelRegistry registry(GpuRuntime rt) {
        return new KernelRegistry(rt, Arena.ofAuto(), INDEX, BUILT,
                new KernelCache(tmp, new PrintStream(OutputStream.nullOutputStream())),
                new PrintStream(noticeBytes, true, StandardCharsets.UTF_8));
    }

    @Test
    void aModuleWithoutAnObjectForTheDeviceIsCompiledForItOncePerStoredType() {
        KernelRegistry r = registry(device("sm_100", Optional.of(nvrtc("sm_100"))));
        KernelRegistry.Kernel k = r.kernel("norms_rmsnorm", DType.FLOAT32);
        assertEquals(List.of(List.of("-DTTT_ONLY_F32")), compiles);
        assertArrayEquals("code [-DTTT_ONLY_F32]".getBytes(StandardCharsets.UTF_8), loaded.get(0));
        assertEquals("1:norms_rmsnorm_f32", functions.get(0));
        assertEquals("compiled for sm_100 by nvrtc 13.0", k.build());
        assertTrue(noticeBytes.toString(StandardCharsets.UTF_8).contains("no norms object for sm_100"), noticeBytes.toString());

        r.kernel("norms_layernorm", DType.FLOAT32);  // the same module and type: no second compile
        assertEquals(1, compiles.size());
        assertEquals("1:norms_layernorm_f32", functions.get(1));

        r.kernel("norms_rmsnorm", DType.BFLOAT16);
        assertEquals(List.of("-DTTT_ONLY_BF16"), compiles.get(1));
        assertEquals("2:norms_rmsnorm_bf16", functions.get(2));
    }

    @Test
    void aSecondProcessFindsTheModuleInTheCache() {
        registry(device("sm_100", Optional.of(nvrtc("sm_100")))).kernel("norms_rmsnorm", DType.FLOAT32);
        registry(device("sm_100", Optional.of(nvrtc("sm_100")))).kernel("norms_rmsnorm", DType.FLOAT32);
        assertEquals(1, compiles.size());
        assertEquals(2, loaded.size());
        assertArrayEquals(loaded.get(0), loaded.get(1));
    }

    @Test
    void withoutACompilerTheErrorSaysWhatWasBuiltAndWhy() {
        KernelRegistry r = registry(device("sm_100", Optional.empty()));
        GpuException e = assertThrows(GpuException.class, () -> r.kernel("norms_rmsnorm", DType.FLOAT32));
        assertTrue(e.getMessage().contains("sm_100") && e.getMessage().contains("built for sm_90"), e.getMessage());
        assertTrue(e.getMessage().contains("no run-time kernel compiler"), e.getMessage());
        assertTrue(loaded.isEmpty());
    }
}
