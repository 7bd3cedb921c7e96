package org.tttbench.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.tttbench.gpu.hip.Hipblas;

/** Where the vendor libraries are looked for, and what a user is told when they are not there. */
class NativeLibrariesTest {

    @TempDir
    Path tmp;

    @Test
    void pipWheelsAreSearchedInThePythonEnvironments() throws Exception {
        Path venv = tmp.resolve("venv");
        Path sp = Files.createDirectories(venv.resolve("lib/python3.12/site-packages"));
        Path onPythonPath = Files.createDirectories(tmp.resolve("pp"));
        List<NativeLibraries.Place> places = NativeLibraries.cudaToolkitPlaces(
                Map.of("VIRTUAL_ENV", venv.toString(), "PYTHONPATH", onPythonPath.toString(), "CUDA_HOME", "/x/cuda"));
        List<String> dirs = places.stream().map(Object::toString).toList();
        assertTrue(dirs.contains(sp.resolve("nvidia/cublas/lib").toString()), dirs.toString());
        assertTrue(dirs.contains(onPythonPath.resolve("nvidia/cublas/lib").toString()), dirs.toString());
        assertEquals("/x/cuda/lib64", dirs.get(0), "CUDA_HOME comes first");
        assertTrue(dirs.stream().noneMatch(d -> d.contains("stubs")), "the stub libcuda only fails");
    }

    @Test
    void rocmPathComesFirst() {
        List<String> dirs = NativeLibraries.rocmPlaces(Map.of("ROCM_PATH", "/x/rocm")).stream().map(Object::toString).toList();
        assertEquals("/x/rocm/lib", dirs.get(0));
        assertTrue(dirs.contains("/opt/rocm/lib"), dirs.toString());
    }

    @Test
    void aMissingLibraryListsEveryPlaceTried() {
        List<NativeLibraries.Place> places = List.of(new NativeLibraries.Dir(tmp), new NativeLibraries.Loader());
        GpuException e = assertThrows(GpuException.class, () -> NativeLibraries.open("the thing (libthing)",
                List.of("libtttbench-none.so.1"), places, "the thing package"));
        assertEquals("the thing (libthing) not found; install the thing package", e.summary());
        assertTrue(e.getMessage().contains("libtttbench-none.so.1 in " + tmp) && e.getMessage().contains("dynamic loader"),
                e.getMessage());
    }

    @Test
    void aFileThatDoesNotLoadIsReported() throws Exception {
        // An executable is an ELF file the loader refuses to open as a library (a text file
        // would do too, but makes the JVM warn about the stack guard).
        Path lib = tmp.resolve("libcublas.so.13");
        Path exe = Path.of("/bin/true");
        if (Files.isRegularFile(exe)) Files.copy(exe, lib);
        else Files.writeString(lib, "not an ELF file");
        GpuException e = assertThrows(GpuException.class, () -> NativeLibraries.open("cuBLAS",
                List.of("libcublas.so.13"), List.of(new NativeLibraries.Dir(tmp)), "cuBLAS"));
        assertTrue(e.getMessage().contains(lib + " exists but did not load"), e.getMessage());
    }

    @Test
    void hipblasApiFollowsTheLibraryVersion() {
        assertEquals(Hipblas.GemmApi.LEGACY, Hipblas.gemmApiOf("libhipblas.so.0.1.50200"));
        assertEquals(Hipblas.GemmApi.LEGACY, Hipblas.gemmApiOf("libhipblas.so.2.0.60000"));
        assertEquals(Hipblas.GemmApi.V2, Hipblas.gemmApiOf("libhipblas.so.3.0.70000"));
    }
}
