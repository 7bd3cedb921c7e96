package org.tttbench.harness;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * What a benchmark run learns that the timings do not carry: which backend and device ran it,
 * its peak memory, whether its kernels were checked against the CPU reference, how its
 * runs were issued on a GPU ({@link TimedWork.Launch}: "graph" or "eager"; null on the CPU), and
 * the check's seed and the inner-scan kernels it verified (those timed; null on the CPU). The forked
 * benchmark JVM writes it to the file named by the system property {@value #PROPERTY}; the
 * adapter reads it back for the result line.
 */
public record RunInfo(
        @JsonProperty("backend") String backend,
        @JsonProperty("device") String device,
        @JsonProperty("peak_memory_bytes") long peakMemoryBytes,
        @JsonProperty("verified") Boolean verified,
        @JsonProperty("launch") String launch,
        @JsonProperty("verify_seed") Long verifySeed,
        @JsonProperty("verified_kernel") String verifiedKernel,
        @JsonProperty("kernel") String kernel) {

    public static final String PROPERTY = "tttbench.runInfo";

    public RunInfo(String backend, String device, long peakMemoryBytes, Boolean verified) {
        this(backend, device, peakMemoryBytes, verified, null);
    }

    public RunInfo(String backend, String device, long peakMemoryBytes, Boolean verified, String launch) {
        this(backend, device, peakMemoryBytes, verified, launch, null, null, null);
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Writes this record where {@value #PROPERTY} says, if it says anywhere. */
    public void publish() {
        String target = System.getProperty(PROPERTY);
        if (target == null || target.isBlank()) return;
        try {
            Path file = Path.of(target);
            Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
            JSON.writeValue(tmp.toFile(), this);
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            System.err.println("tttbench: could not write run info to " + target + ": " + e.getMessage());
        }
    }

    public static RunInfo read(Path file) throws IOException {
        return JSON.readValue(file.toFile(), RunInfo.class);
    }
}
