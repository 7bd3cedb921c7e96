package org.tttbench.gpu;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The launch descriptors of every kernel in hip/, as scripts/build-kernels.sh copies them into
 * kernels/launch.txt (hip/README.md): for each entry point (without its dtype suffix) its
 * module, threads a block, cluster size, grid and dynamic shared memory; and every buffer size
 * the host allocates for a kernel. The hip/ sources write each number once; this is how the
 * host reads it.
 *
 * <p>A line is {@code MODULE @launch NAME THREADS CLUSTER GRID_X GRID_Y SHARED_BYTES} or
 * {@code MODULE @size NAME EXPR}, fields separated by white space, expressions without spaces.
 */
public final class KernelIndex {

    /** One entry point's launch. */
    record Launch(String module, String name, int threads, int cluster, LaunchExpr gridX, LaunchExpr gridY,
            LaunchExpr sharedBytes) {
    }

    private static KernelIndex packaged;

    private final Map<String, Launch> launches;
    private final Map<String, LaunchExpr> sizes;

    private KernelIndex(Map<String, Launch> launches, Map<String, LaunchExpr> sizes) {
        this.launches = Collections.unmodifiableMap(launches);
        this.sizes = Collections.unmodifiableMap(sizes);
    }

    /** The index packed into the jar with the kernels (empty when no kernel was built). */
    static synchronized KernelIndex packaged() {
        if (packaged == null) {
            try (InputStream in = KernelIndex.class.getResourceAsStream("/kernels/launch.txt")) {
                packaged = parse(in == null ? "" : new String(in.readAllBytes(), StandardCharsets.UTF_8));
            } catch (IOException e) {
                throw new UncheckedIOException("reading kernels/launch.txt", e);
            }
        }
        return packaged;
    }

    /** @throws IllegalArgumentException naming the line that is not a descriptor */
    static KernelIndex parse(String text) {
        Map<String, Launch> launches = new LinkedHashMap<>();
        Map<String, LaunchExpr> sizes = new LinkedHashMap<>();
        int number = 0;
        for (String line : text.split("\n")) {
            number++;
            String l = line.strip();
            if (l.isEmpty() || l.startsWith("#")) continue;
            String[] f = l.split("\\s+");
            try {
                if (f.length == 8 && f[1].equals("@launch")) {
                    Launch launch = new Launch(f[0], f[2], Integer.parseInt(f[3]), Integer.parseInt(f[4]),
                            LaunchExpr.parse(f[5]), LaunchExpr.parse(f[6]), LaunchExpr.parse(f[7]));
                    if (launches.put(launch.name(), launch) != null) throw new IllegalArgumentException("described twice");
                } else if (f.length == 4 && f[1].equals("@size")) {
                    if (sizes.put(f[2], LaunchExpr.parse(f[3])) != null) throw new IllegalArgumentException("given twice");
                } else {
                    throw new IllegalArgumentException("not 'MODULE @launch NAME THREADS CLUSTER GRID_X GRID_Y SHARED'"
                            + " or 'MODULE @size NAME EXPR'");
                }
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("kernels/launch.txt line " + number + " (" + l + "): " + e.getMessage(), e);
            }
        }
        return new KernelIndex(launches, sizes);
    }

    /** @throws GpuException when no kernel of that name was described (the build did not run, or the name is wrong) */
    Launch launch(String name) {
        Launch l = launches.get(name);
        if (l == null) {
            throw new GpuException("no kernel '" + name + "' in kernels/launch.txt" + (launches.isEmpty()
                    ? " (this build has no kernels: was scripts/build-kernels.sh run with hipcc / nvcc installed?)"
                    : ""));
        }
        return l;
    }

    /** A buffer size of hip/, by name, with these variables bound. */
    long size(String name, LaunchVars vars) {
        LaunchExpr e = sizes.get(name);
        if (e == null) throw new GpuException("no size '" + name + "' in kernels/launch.txt");
        return e.eval(vars);
    }

    Map<String, Launch> launches() {
        return launches;
    }

    Map<String, LaunchExpr> sizes() {
        return sizes;
    }
}
