package org.tttbench.validate;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.tttbench.io.Safetensors;

/** The golden case files of SPEC §7, copied into the test resources, read once per run. */
final class Golden {

    static final List<String> CASES = List.of("linear_tiny", "mlp_tiny", "linear_k16", "mlp_k16");

    private static final Map<String, Safetensors.Contents> CACHE = new ConcurrentHashMap<>();

    private Golden() {
    }

    static Path path(String name) {
        try {
            return Path.of(Golden.class.getResource("/golden/" + name + ".safetensors").toURI());
        } catch (URISyntaxException | NullPointerException e) {
            throw new IllegalStateException("golden case " + name + " is not among the test resources", e);
        }
    }

    static Safetensors.Contents read(String name) {
        return CACHE.computeIfAbsent(name, n -> {
            try {
                return Safetensors.read(path(n));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }
}
