package org.tttbench.gpu;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Finds the vendor libraries of a stock ROCm install, a stock CUDA install, the NVIDIA driver,
 * and NVIDIA's pip wheels, and opens the first that loads. When none does, the error lists
 * every file and loader name that was tried, so a user can see at once where to put what.
 */
public final class NativeLibraries {

    private NativeLibraries() {
    }

    /** A loaded library: where it came from and its symbols. */
    public record Loaded(String source, SymbolLookup symbols) {

        /** The file name the loader resolved, for version checks ("libhipblas.so.2.0.60000"). */
        public String realFileName() {
            try {
                return Path.of(source).toRealPath().getFileName().toString();
            } catch (IOException | RuntimeException e) {
                return Path.of(source).getFileName().toString();
            }
        }
    }

    /**
     * Where to look, in order: a folder searched for each file name, or the dynamic loader's own
     * search (LD_LIBRARY_PATH, ld.so.cache, system folders) for each file name.
     */
    public sealed interface Place permits Dir, Loader {
    }

    public record Dir(Path path) implements Place {
        @Override
        public String toString() {
            return path.toString();
        }
    }

    public record Loader() implements Place {
        @Override
        public String toString() {
            return "the dynamic loader's search path (LD_LIBRARY_PATH, ld.so.cache)";
        }
    }

    /**
     * Opens the first of {@code fileNames} found in {@code places}.
     *
     * @param what     what the library is, for the error ("the CUDA driver (libcuda)")
     * @param provides what to install when it is missing ("the NVIDIA driver")
     */
    public static Loaded open(String what, List<String> fileNames, List<Place> places, String provides) {
        List<String> failures = new ArrayList<>();
        for (Place place : places) {
            for (String name : fileNames) {
                switch (place) {
                    case Dir(Path dir) -> {
                        Path file = dir.resolve(name);
                        if (!Files.exists(file)) continue;
                        try {
                            return new Loaded(file.toString(), SymbolLookup.libraryLookup(file, Arena.global()));
                        } catch (IllegalArgumentException e) {
                            failures.add(file + " exists but did not load: " + e.getMessage());
                        }
                    }
                    case Loader() -> {
                        try {
                            return new Loaded(name, SymbolLookup.libraryLookup(name, Arena.global()));
                        } catch (IllegalArgumentException e) {
                            // Not known to the loader; the message below says it was tried.
                        }
                    }
                }
            }
        }
        StringBuilder sb = new StringBuilder();
        sb.append("looked for ").append(String.join(", ", fileNames)).append(" in ");
        List<String> where = new ArrayList<>();
        for (Place p : places) where.add(p.toString());
        sb.append(String.join(", ", where));
        for (String f : failures) sb.append("; ").append(f);
        throw new GpuException(what + " not found; install " + provides, sb.toString());
    }

    // ---- the places of each vendor ----

    /** The NVIDIA driver's libcuda: the loader's search first, since the driver owns it, then the usual folders. */
    public static List<Place> cudaDriverPlaces(Map<String, String> env) {
        List<Place> places = new ArrayList<>();
        places.add(new Loader());
        for (String d : List.of("/usr/local/nvidia/lib64", "/usr/local/nvidia/lib", "/usr/lib/x86_64-linux-gnu",
                "/usr/lib64", "/usr/lib/wsl/lib")) {
            places.add(new Dir(Path.of(d)));
        }
        return places;
    }

    /**
     * cuBLAS: the toolkit that CUDA_PATH / CUDA_HOME name, the loader's search, the stock toolkit
     * folders, then NVIDIA's pip wheels in the Python environments that can be found. The
     * toolkit's lib64/stubs folder is never searched: its libraries only fail.
     */
    public static List<Place> cudaToolkitPlaces(Map<String, String> env) {
        Set<Path> dirs = new LinkedHashSet<>();
        for (String var : List.of("CUDA_PATH", "CUDA_HOME", "CUDA_ROOT")) {
            String v = env.get(var);
            if (v != null && !v.isBlank()) {
                dirs.add(Path.of(v, "lib64"));
                dirs.add(Path.of(v, "lib"));
                dirs.add(Path.of(v, "targets", "x86_64-linux", "lib"));
            }
        }
        List<Place> places = new ArrayList<>();
        for (Path d : dirs) places.add(new Dir(d));
        places.add(new Loader());
        for (String d : List.of("/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib",
                "/usr/lib/x86_64-linux-gnu", "/usr/lib64")) {
            places.add(new Dir(Path.of(d)));
        }
        for (Path sp : sitePackages(env)) {
            places.add(new Dir(sp.resolve("nvidia/cublas/lib")));
            places.add(new Dir(sp.resolve("nvidia/cu13/lib")));
        }
        return places;
    }

    /** ROCm: ROCM_PATH / HIP_PATH, the loader's search, /opt/rocm and versioned /opt/rocm-x.y.z, the system folders. */
    public static List<Place> rocmPlaces(Map<String, String> env) {
        Set<Path> dirs = new LinkedHashSet<>();
        for (String var : List.of("ROCM_PATH", "HIP_PATH")) {
            String v = env.get(var);
            if (v != null && !v.isBlank()) {
                dirs.add(Path.of(v, "lib"));
                dirs.add(Path.of(v, "lib64"));
            }
        }
        List<Place> places = new ArrayList<>();
        for (Path d : dirs) places.add(new Dir(d));
        places.add(new Loader());
        places.add(new Dir(Path.of("/opt/rocm/lib")));
        for (Path versioned : childrenNewestFirst(Path.of("/opt"), "rocm-")) {
            places.add(new Dir(versioned.resolve("lib")));
        }
        places.add(new Dir(Path.of("/usr/lib/x86_64-linux-gnu")));
        places.add(new Dir(Path.of("/usr/lib64")));
        return places;
    }

    /**
     * The site-packages folders of the Python environments a user is likely to have installed
     * NVIDIA's wheels into: PYTHONPATH, an active venv or conda env, the user's own, the
     * system's, and venvs in the usual places (./.venv, ~/.venv, /opt/NAME/.venv).
     */
    public static List<Path> sitePackages(Map<String, String> env) {
        Set<Path> result = new LinkedHashSet<>();
        String pythonPath = env.get("PYTHONPATH");
        if (pythonPath != null) {
            for (String p : pythonPath.split(":")) {
                if (!p.isBlank()) result.add(Path.of(p));
            }
        }
        List<Path> prefixes = new ArrayList<>();
        for (String var : List.of("VIRTUAL_ENV", "CONDA_PREFIX")) {
            String v = env.get(var);
            if (v != null && !v.isBlank()) prefixes.add(Path.of(v));
        }
        String home = env.get("HOME");
        prefixes.add(Path.of(".venv").toAbsolutePath());
        if (home != null) {
            prefixes.add(Path.of(home, ".venv"));
            prefixes.add(Path.of(home, ".local"));
        }
        for (Path opt : childrenNewestFirst(Path.of("/opt"), "")) prefixes.add(opt.resolve(".venv"));
        prefixes.add(Path.of("/opt/conda"));
        prefixes.add(Path.of("/usr/local"));
        prefixes.add(Path.of("/usr"));
        for (Path prefix : prefixes) {
            for (Path py : childrenNewestFirst(prefix.resolve("lib"), "python3")) {
                for (String leaf : List.of("site-packages", "dist-packages")) {
                    Path sp = py.resolve(leaf);
                    if (Files.isDirectory(sp)) result.add(sp);
                }
            }
        }
        Path debian = Path.of("/usr/lib/python3/dist-packages");
        if (Files.isDirectory(debian)) result.add(debian);
        return List.copyOf(result);
    }

    /** Sub-folders of {@code dir} whose names start with {@code prefix}, in reverse name order. */
    private static List<Path> childrenNewestFirst(Path dir, String prefix) {
        List<Path> out = new ArrayList<>();
        if (!Files.isDirectory(dir)) return out;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            for (Path p : ds) {
                if (p.getFileName().toString().startsWith(prefix) && Files.isDirectory(p)) out.add(p);
            }
        } catch (IOException | SecurityException e) {
            return out;
        }
        out.sort((a, b) -> b.getFileName().toString().compareTo(a.getFileName().toString()));
        return out;
    }
}
