package org.tttbench.cli;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.Arrays;
import java.util.List;
import org.tttbench.config.RunOptions;
import org.tttbench.config.Workload;
import org.tttbench.harness.RunInfo;

/**
 * The family's one-line JSON result (SPEC §6): the shared keys first, in the family's order,
 * then this suite's extras.
 */
@JsonPropertyOrder({"implementation", "model_size", "ttt_type", "backward", "inner_only", "batch", "seq_len",
        "mini_batch", "checkpoint_interval", "dtype", "num_params", "time_ms", "throughput", "device",
        "backend", "tf32", "warmup", "repeats", "time_ms_min", "time_ms_median", "time_ms_max", "time_ms_stdev",
        "times_ms", "peak_memory_bytes", "verified", "verify_seed", "verified_kernel", "launch", "kernel", "java_version", "comment"})
// Every key in every line (null where it does not apply), so that tables of results line up.
@JsonInclude(JsonInclude.Include.ALWAYS)
public record BenchResult(
        @JsonProperty("implementation") String implementation,
        @JsonProperty("model_size") String modelSize,
        @JsonProperty("ttt_type") String tttType,
        @JsonProperty("backward") boolean backward,
        @JsonProperty("inner_only") boolean innerOnly,
        @JsonProperty("batch") int batch,
        @JsonProperty("seq_len") int seqLen,
        @JsonProperty("mini_batch") int miniBatch,
        @JsonProperty("checkpoint_interval") int checkpointInterval,
        @JsonProperty("dtype") String dtype,
        @JsonProperty("num_params") long numParams,
        @JsonProperty("time_ms") double timeMs,
        @JsonProperty("throughput") double throughput,
        @JsonProperty("device") String device,
        @JsonProperty("backend") String backend,
        @JsonProperty("tf32") boolean tf32,
        @JsonProperty("warmup") int warmup,
        @JsonProperty("repeats") int repeats,
        @JsonProperty("time_ms_min") double timeMsMin,
        @JsonProperty("time_ms_median") double timeMsMedian,
        @JsonProperty("time_ms_max") double timeMsMax,
        @JsonProperty("time_ms_stdev") double timeMsStdev,
        @JsonProperty("times_ms") List<Double> timesMs,
        @JsonProperty("peak_memory_bytes") Long peakMemoryBytes,
        @JsonProperty("verified") Boolean verified,
        @JsonProperty("verify_seed") Long verifySeed,
        @JsonProperty("verified_kernel") String verifiedKernel,
        @JsonProperty("launch") String launch,
        @JsonProperty("kernel") String kernel,
        @JsonProperty("java_version") String javaVersion,
        @JsonProperty("comment") String comment) {

    public static final String IMPLEMENTATION = "tttbench";

    private static final ObjectMapper JSON = new ObjectMapper();

    /** The result of one configuration from its repeat times (milliseconds) and what the run reported. */
    public static BenchResult of(Workload c, RunOptions run, double[] timesMs, RunInfo info) {
        if (timesMs.length == 0) throw new IllegalArgumentException("no repeat times");
        double mean = Arrays.stream(timesMs).average().orElseThrow();
        double[] sorted = timesMs.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        double median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
        double var = 0;
        for (double t : timesMs) var += (t - mean) * (t - mean);
        double stdev = n > 1 ? Math.sqrt(var / (n - 1)) : 0;
        double throughput = (double) c.batch() * c.seqLen() / (mean / 1000.0);
        return new BenchResult(IMPLEMENTATION, c.modelSize(), c.tttType().flag(), c.backward(), c.innerOnly(),
                c.batch(), c.seqLen(), c.miniBatch(), c.checkpointInterval(), c.dtype().flag(), c.parameterCount(),
                mean, throughput, info.device(), info.backend(), c.tf32(), run.warmup(), run.repeats(), sorted[0], median,
                sorted[n - 1], stdev, Arrays.stream(timesMs).boxed().toList(),
                info.peakMemoryBytes() >= 0 ? info.peakMemoryBytes() : null, info.verified(), info.verifySeed(),
                info.verifiedKernel(), info.launch(), info.kernel(),
                Runtime.version().toString(), run.comment());
    }

    public String toJsonLine() {
        try {
            return JSON.writeValueAsString(this);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A short readable summary for a terminal. */
    public String toSummary() {
        return String.format("""
                tttbench %s %s %s%s, batch %d, seq-len %d, mini-batch %d, %s%s
                  device      %s (%s)%s
                  parameters  %,d
                  time        %.3f ms mean of %d (min %.3f, median %.3f, max %.3f, stdev %.3f)
                  throughput  %,.0f tokens/s%s
                """,
                modelSize, tttType, innerOnly ? "inner " : "", backward ? "forward+backward" : "forward", batch, seqLen,
                miniBatch, dtype, tf32 ? " (TF32)" : "", device, backend, launch == null ? "" : ", " + launch + " launch",
                numParams, timeMs, repeats, timeMsMin,
                timeMsMedian, timeMsMax, timeMsStdev, throughput,
                peakMemoryBytes == null ? "" : String.format("%n  peak memory %.1f MiB", peakMemoryBytes / 1048576.0));
    }
}
