package org.tttbench.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.tttbench.gpu.cuda.Cublas;
import org.tttbench.gpu.cuda.CudaDriver;
import org.tttbench.gpu.cuda.Nvrtc;
import org.tttbench.gpu.hip.HipRuntimeApi;
import org.tttbench.gpu.hip.Hipblas;
import org.tttbench.gpu.hip.Hiprtc;

/**
 * Every bound function's parameter and return types against the vendor's own header, after the
 * C preprocessor (so cuda.h's _v2 #defines apply), and every constant against the value a C
 * compiler gives it. cuda.h and hip_runtime_api.h are required in CI; hiprtc.h wherever
 * hip_runtime_api.h is (the same package installs both); cublas_api.h, nvrtc.h and hipblas.h are
 * checked where installed (TTTBENCH_EXTRA_INCLUDE adds a folder to look in). Where nvrtc.h is
 * not at hand, {@link CDeclarations} writes a C file for nvcc to check the NVRTC bindings with.
 */
class BindingSignaturesTest {

    @TempDir
    Path work;

    private static boolean ci() {
        return "true".equals(System.getenv("CI"));
    }

    private static List<Path> includeDirs(String... envVars) {
        Set<Path> dirs = new LinkedHashSet<>();
        String extra = System.getenv("TTTBENCH_EXTRA_INCLUDE");
        if (extra != null) for (String d : extra.split(":")) if (!d.isBlank()) dirs.add(Path.of(d));
        for (String v : envVars) {
            String value = System.getenv(v);
            if (value != null && !value.isBlank()) dirs.add(Path.of(value, "include"));
        }
        dirs.add(Path.of("/usr/local/cuda/include"));
        dirs.add(Path.of("/opt/rocm/include"));
        dirs.add(Path.of("/usr/include"));
        return List.copyOf(dirs);
    }

    /** The folder holding {@code relative} whose text contains {@code marker}. */
    private static Optional<Path> find(String relative, String marker, List<Path> dirs) {
        for (Path d : dirs) {
            Path f = d.resolve(relative);
            try {
                if (Files.isRegularFile(f) && Files.readString(f).contains(marker)) return Optional.of(d);
            } catch (java.io.IOException e) {
                // unreadable: keep looking
            }
        }
        return Optional.empty();
    }

    private static Path requireHeader(String relative, String marker, List<Path> dirs, boolean required) {
        Optional<Path> dir = find(relative, marker, dirs);
        Assumptions.assumeTrue(CHeader.compiler().isPresent() || required, "no C compiler (cc, gcc, clang) on PATH");
        if (dir.isEmpty()) {
            if (required) fail(relative + " not found in " + dirs + " (CI installs it)");
            Assumptions.abort(relative + " not installed here (looked in " + dirs + ")");
        }
        if (CHeader.compiler().isEmpty()) fail("no C compiler (cc, gcc, clang) on PATH to read " + relative);
        return dir.get();
    }

    @Test
    void cudaDriverMatchesCudaH() throws Exception {
        Path dir = requireHeader("cuda.h", "cuInit", includeDirs("CUDA_PATH", "CUDA_HOME"), ci());
        checkAgainst("cuda.h", List.of("-I" + dir), CudaDriver.class);
    }

    @Test
    void cublasMatchesCublasApiH() throws Exception {
        List<Path> dirs = includeDirs("CUDA_PATH", "CUDA_HOME");
        Path dir = requireHeader("cublas_api.h", "cublasGemmEx", dirs, false);
        Path cudaDir = find("cuda.h", "cuInit", dirs).orElse(dir);
        List<String> flags = List.of("-I" + dir, "-I" + cudaDir);
        CHeader h = CHeader.preprocess("cublas_api.h", flags);
        checkFunctions(h, Cublas.FUNCTIONS, Map.of());
        checkConstants(Cublas.class, "cublas_api.h", flags, h, Set.of());
    }

    @Test
    void nvrtcMatchesNvrtcH() throws Exception {
        Path dir = requireHeader("nvrtc.h", "nvrtcCompileProgram", includeDirs("CUDA_PATH", "CUDA_HOME"), false);
        checkAgainst("nvrtc.h", List.of("-I" + dir), Nvrtc.class);
    }

    @Test
    void hiprtcMatchesHiprtcH() throws Exception {
        List<Path> dirs = includeDirs("ROCM_PATH", "HIP_PATH");
        boolean hipInstalled = find("hip/hip_runtime_api.h", "hipModuleLaunchKernel", dirs).isPresent();
        Path dir = requireHeader("hip/hiprtc.h", "hiprtcCompileProgram", dirs, ci() || hipInstalled);
        checkAgainst("hip/hiprtc.h", List.of("-D__HIP_PLATFORM_AMD__", "-I" + dir), Hiprtc.class);
    }

    @Test
    void hipRuntimeMatchesHipRuntimeApiH() throws Exception {
        Path dir = requireHeader("hip/hip_runtime_api.h", "hipModuleLaunchKernel", includeDirs("ROCM_PATH", "HIP_PATH"),
                ci());
        List<String> flags = List.of("-D__HIP_PLATFORM_AMD__", "-I" + dir);
        CHeader h = CHeader.preprocess("hip/hip_runtime_api.h", flags);
        // ROCm 6 renamed hipGetDeviceProperties for its new struct layout; the old header lacks the
        // new name, the new header #defines the old name to it. Either way the two pass the same.
        Map<String, String> sameAs = Map.of("hipGetDevicePropertiesR0600", "hipGetDeviceProperties",
                "hipGetDeviceProperties", "hipGetDevicePropertiesR0600");
        checkFunctions(h, HipRuntimeApi.FUNCTIONS, sameAs);
        checkConstants(HipRuntimeApi.class, "hip/hip_runtime_api.h", flags, h, Set.of());

        // The struct layouts: ROCm 6 headers describe hipDeviceProp_tR0600, older ones the R0000 layout.
        Map<String, Long> v = CHeader.evaluate("hip/hip_runtime_api.h", flags, List.of("HIP_VERSION_MAJOR",
                "offsetof(hipDeviceProp_t, name)", "offsetof(hipDeviceProp_t, gcnArchName)", "sizeof(hipDeviceProp_t)"),
                work);
        var layout = v.get("HIP_VERSION_MAJOR") >= 6 ? HipRuntimeApi.hipDeviceProp_tR0600 : HipRuntimeApi.hipDeviceProp_tR0000;
        assertEquals(v.get("offsetof(hipDeviceProp_t, name)"),
                layout.byteOffset(MemoryLayout.PathElement.groupElement("name")), layout.name() + ".name");
        assertEquals(v.get("offsetof(hipDeviceProp_t, gcnArchName)"),
                layout.byteOffset(MemoryLayout.PathElement.groupElement("gcnArchName")), layout.name() + ".gcnArchName");
        assertTrue(layout.byteSize() >= v.get("sizeof(hipDeviceProp_t)"),
                layout.name() + " is " + layout.byteSize() + " bytes, the header's struct " + v.get("sizeof(hipDeviceProp_t)"));
    }

    @Test
    void hipblasMatchesHipblasH() throws Exception {
        List<Path> dirs = includeDirs("ROCM_PATH", "HIP_PATH");
        Optional<Path> nested = find("hipblas/hipblas.h", "hipblasGemmEx", dirs);
        String include = nested.isPresent() ? "hipblas/hipblas.h" : "hipblas.h";
        Path dir = requireHeader(include, "hipblasGemmEx", dirs, false);
        List<String> flags = List.of("-D__HIP_PLATFORM_AMD__", "-I" + dir);
        CHeader h = CHeader.preprocess(include, flags);
        // Each hipBLAS release declares one of the two GemmEx spellings (see Hipblas); they pass alike.
        Map<String, String> sameAs = Map.of("hipblasGemmEx_v2", "hipblasGemmEx",
                "hipblasGemmStridedBatchedEx_v2", "hipblasGemmStridedBatchedEx");
        checkFunctions(h, Hipblas.FUNCTIONS, sameAs);
        // ROCm 7 drops hipblasDatatype_t, ROCm 5 lacks hipDataType's bfloat16: whichever the header has is checked.
        checkConstants(Hipblas.class, include, flags, h, Set.of("HIPBLAS_R_16F", "HIPBLAS_R_32F", "HIPBLAS_R_16B",
                "HIP_R_16BF", "HIPBLAS_COMPUTE_32F"));
    }

    /** Every function and constant of {@code binding} against {@code include}, where no symbol needs a stand-in. */
    private void checkAgainst(String include, List<String> flags, Class<?> binding) throws Exception {
        CHeader h = CHeader.preprocess(include, flags);
        checkFunctions(h, functionsOf(binding), Map.of());
        checkConstants(binding, include, flags, h, Set.of());
    }

    /** Each bound function against its declaration; {@code sameAs} names a stand-in for symbols this header version lacks. */
    private static void checkFunctions(CHeader h, Map<String, FunctionDescriptor> bound, Map<String, String> sameAs) {
        List<String> problems = new ArrayList<>();
        for (var e : bound.entrySet()) {
            String name = e.getKey();
            Optional<CHeader.Function> decl = h.function(name);
            if (decl.isEmpty() && sameAs.containsKey(name)) {
                decl = h.function(sameAs.get(name));
                if (decl.isPresent() && !bound.get(sameAs.get(name)).equals(e.getValue())) {
                    problems.add(name + ": bound unlike " + sameAs.get(name) + ", which it stands for");
                }
            }
            if (decl.isEmpty()) {
                problems.add(name + ": not declared in the header");
                continue;
            }
            FunctionDescriptor d = e.getValue();
            CHeader.Function f = decl.get();
            MemoryLayout ret = d.returnLayout().orElse(null);
            if (!CHeader.samePassing(ret, f.result())) {
                problems.add(name + ": returns " + CHeader.describe(f.result()) + " in C, bound as " + CHeader.describe(ret));
            }
            if (f.params().size() != d.argumentLayouts().size()) {
                problems.add(name + ": " + f.params().size() + " parameters in C, " + d.argumentLayouts().size() + " bound");
                continue;
            }
            for (int i = 0; i < f.params().size(); i++) {
                if (!CHeader.samePassing(f.params().get(i), d.argumentLayouts().get(i))) {
                    problems.add(name + ": parameter " + (i + 1) + " is " + CHeader.describe(f.params().get(i))
                            + " in C, bound as " + CHeader.describe(d.argumentLayouts().get(i)));
                }
            }
        }
        assertTrue(problems.isEmpty(), String.join("\n", problems));
    }

    /** Every public static final int of {@code binding} against the C value of the same name. */
    private void checkConstants(Class<?> binding, String include, List<String> flags, CHeader h, Set<String> mayBeAbsent)
            throws Exception {
        List<String> names = new ArrayList<>();
        List<String> missing = new ArrayList<>();
        for (Field f : binding.getFields()) {
            if (!Modifier.isStatic(f.getModifiers()) || f.getType() != int.class) continue;
            if (h.mentions(f.getName())) names.add(f.getName());
            else if (!mayBeAbsent.contains(f.getName())) missing.add(f.getName());
        }
        assertTrue(missing.isEmpty(), "constants not in " + include + ": " + missing);
        Map<String, Long> values = CHeader.evaluate(include, flags, names, work);
        List<String> wrong = new ArrayList<>();
        for (String n : names) {
            long java = binding.getField(n).getInt(null);
            if (values.get(n) != java) wrong.add(n + " is " + values.get(n) + " in C, " + java + " here");
        }
        assertTrue(wrong.isEmpty(), String.join("\n", wrong));
    }

    /** The Java method of each bound function takes and returns what its descriptor passes. */
    @Test
    void methodsMatchDescriptors() {
        List<String> problems = new ArrayList<>();
        for (var binding : List.of(CudaDriver.class, Cublas.class, Nvrtc.class, HipRuntimeApi.class, Hipblas.class,
                Hiprtc.class)) {
            Map<String, FunctionDescriptor> functions = functionsOf(binding);
            for (var e : functions.entrySet()) {
                Method m = methodNamed(binding, e.getKey());
                if (m == null) {
                    problems.add(binding.getSimpleName() + "." + e.getKey() + ": no method");
                    continue;
                }
                List<Class<?>> want = new ArrayList<>();
                for (MemoryLayout l : e.getValue().argumentLayouts()) want.add(carrier(l));
                if (!List.of(m.getParameterTypes()).equals(want)) {
                    problems.add(binding.getSimpleName() + "." + e.getKey() + ": takes " + List.of(m.getParameterTypes())
                            + ", descriptor passes " + want);
                }
                Class<?> ret = e.getValue().returnLayout().map(BindingSignaturesTest::carrier).orElse(void.class);
                if (m.getReturnType() != ret) {
                    problems.add(binding.getSimpleName() + "." + e.getKey() + ": returns " + m.getReturnType() + ", not " + ret);
                }
            }
        }
        assertTrue(problems.isEmpty(), String.join("\n", problems));
    }

    @SuppressWarnings("unchecked")
    static Map<String, FunctionDescriptor> functionsOf(Class<?> binding) {
        try {
            return (Map<String, FunctionDescriptor>) binding.getField("FUNCTIONS").get(null);
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(binding + " has no FUNCTIONS", e);
        }
    }

    private static Method methodNamed(Class<?> c, String name) {
        for (Method m : c.getMethods()) {
            if (m.getName().equals(name) && Modifier.isStatic(m.getModifiers())) return m;
        }
        return null;
    }

    private static Class<?> carrier(MemoryLayout l) {
        return l instanceof ValueLayout v && v.carrier() != MemorySegment.class ? v.carrier() : MemorySegment.class;
    }
}
