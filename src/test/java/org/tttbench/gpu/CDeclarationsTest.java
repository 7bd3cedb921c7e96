package org.tttbench.gpu;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.FunctionDescriptor;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.tttbench.gpu.hip.Hiprtc;

/**
 * The C++ file {@link CDeclarations} writes, compiled here against hip/hiprtc.h (the header this
 * machine has) with the host C++ compiler: the real binding compiles, a wrong one does not. The
 * same file written for Nvrtc is compiled with nvcc where CUDA is installed.
 */
class CDeclarationsTest {

    @TempDir
    Path work;

    /** hipRTC bound wrongly twice over: a parameter of the wrong size, and a constant of the wrong value. */
    static final class WrongHiprtc {
        public static final int HIPRTC_ERROR_COMPILATION = 7;
        public static final Map<String, FunctionDescriptor> FUNCTIONS = Ffm.functions(
                "hiprtcCompileProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS));
    }

    @Test
    void descriptorsBecomeLetters() {
        assertEquals("iaaaiaa", CDeclarations.passing(FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT,
                ADDRESS, ADDRESS)));
        assertEquals("va", CDeclarations.passing(FunctionDescriptor.ofVoid(ADDRESS)));
    }

    @Test
    void theBindingCompilesAgainstItsHeader() throws Exception {
        CompileResult r = compile(Hiprtc.class);
        assertEquals(0, r.status(), r.output());
    }

    @Test
    void aWrongBindingDoesNot() throws Exception {
        CompileResult r = compile(WrongHiprtc.class);
        assertNotEquals(0, r.status(), "a wrong descriptor compiled");
        assertTrue(r.output().contains("hiprtcCompileProgram is bound as iala"), r.output());
        assertTrue(r.output().contains("HIPRTC_ERROR_COMPILATION is 7"), r.output());
    }

    private record CompileResult(int status, String output) {
    }

    private CompileResult compile(Class<?> binding) throws Exception {
        Path header = Path.of("/usr/include/hip/hiprtc.h");
        Assumptions.assumeTrue(Files.isRegularFile(header), "hip/hiprtc.h is not installed here");
        Assumptions.assumeTrue(CHeader.compiler().isPresent(), "no C compiler on PATH");
        Path source = work.resolve("bindings.cpp");
        Files.writeString(source, CDeclarations.generate(binding, "hip/hiprtc.h"));
        List<String> cmd = new ArrayList<>(List.of(CHeader.compiler().get(), "-x", "c++", "-std=c++17", "-fsyntax-only",
                "-D__HIP_PLATFORM_AMD__", source.toString()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the compiler did not finish");
        // A compiler that cannot do C++ at all says nothing about the bindings.
        Assumptions.assumeFalse(out.contains("cc1plus") || out.contains("language not recognized"), out);
        return new CompileResult(p.exitValue(), out);
    }
}
