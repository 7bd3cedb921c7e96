package org.tttbench.bench;

import java.nio.file.Path;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.BenchmarkParams;
import org.tttbench.backend.Backend;
import org.tttbench.backend.ScanShape;
import org.tttbench.backend.Tensor;
import org.tttbench.config.BackendKind;
import org.tttbench.config.BenchmarkKind;
import org.tttbench.config.DType;
import org.tttbench.config.ModelConfig;
import org.tttbench.config.TttType;
import org.tttbench.config.Workload;
import org.tttbench.harness.Backends;
import org.tttbench.harness.BenchmarkWork;
import org.tttbench.harness.DeviceWarmup;
import org.tttbench.harness.RunInfo;
import org.tttbench.harness.TimedWork;
import org.tttbench.verify.Verifier;

/**
 * The four benchmarks of SPEC §4. One invocation is one full run of the benchmark
 * (SingleShotTime): a forward of a 1b model is far too long for time slices, and the family
 * counts warmups and repeats in runs. Setup (weights, inputs, kernels, every buffer) happens
 * once per trial, outside the timer; each method ends with a device synchronize, so the timer
 * stops only when the device is done.
 *
 * <p>On a GPU, setup runs the work once eagerly, records it into a device graph (unless
 * {@code graph=false}), and runs it back to back until its time settles ({@link DeviceWarmup},
 * unless {@code deviceWarmup=false}); a timed run is then one replay of the graph, so the timer
 * sees the device's work rather than the host's cost of issuing hundreds of ops through FFM.
 * How runs were issued goes to stderr and into the result ({@code launch}).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3)
@Measurement(iterations = 5)
// JMH 1.37 reads field offsets through sun.misc.Unsafe, which Java 25 warns about on every fork unless allowed.
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class TttBenchmark {

    @Param({"12m"})
    public String modelSize;

    @Param({"linear"})
    public String tttType;

    @Param({"float32"})
    public String dtype;

    @Param({"1"})
    public int batch;

    @Param({"2048"})
    public int seqLen;

    @Param({"16"})
    public int miniBatch;

    @Param({"1"})
    public int checkpointInterval;

    /** auto | cpu | hip | cuda; auto takes a usable GPU, else the CPU. */
    @Param({"auto"})
    public String backend;

    /** Let float32 matrix products use TF32 matrix units (GPU only). */
    @Param({"false"})
    public boolean tf32;

    /** A safetensors file of weights by the reference's names; empty for the seeded init. */
    @Param({""})
    public String weights;

    /**
     * GPU: time one replay of the run recorded in setup (true) or every op issued from the host
     * (false). Ignored on the CPU.
     */
    @Param({"true"})
    public boolean graph;

    /** GPU: run the work back to back in setup until the time of a run settles. Ignored on the CPU. */
    @Param({"true"})
    public boolean deviceWarmup;

    private Backend be;
    private BenchmarkWork work;
    private TimedWork timed;
    /** True once the GPU kernels passed the check against the CPU reference; null on the CPU. */
    private Boolean verified;
    /** What the check verified: the kernels timed and the seed of its inputs; null on the CPU. */
    private Verifier.Verified check;
    /** The inner-scan kernels the timed run uses, with how each was built; null on the CPU. */
    private String kernel;

    @Setup(Level.Trial)
    public void setup(BenchmarkParams params) {
        String method = params.getBenchmark().substring(params.getBenchmark().lastIndexOf('.') + 1);
        Workload workload = new Workload(modelSize, TttType.parse(tttType), false, false, batch, seqLen, miniBatch,
                DType.parse(dtype), checkpointInterval, tf32, weights.isEmpty() ? null : Path.of(weights))
                .as(BenchmarkKind.byMethod(method));
        be = Backends.open(BackendKind.parse(backend), workload.dtype(), workload.tf32());
        // A GPU kernel is checked against the CPU reference at a reduced size before it is timed: a
        // benchmark of a wrong kernel is worthless. The check runs the kernels the timed run chooses; its
        // seed is drawn here and reported, so that a failure can be run again (the exception says how).
        // Its buffers are freed before the benchmark's own are allocated, so the peak memory reported is
        // the benchmark's alone.
        if (onGpu()) {
            long seed = ThreadLocalRandom.current().nextLong() & Long.MAX_VALUE;
            be.runReleasing(() -> check = Verifier.checkConfig(be, workload, seed));
            verified = Boolean.TRUE;
        }
        work = BenchmarkWork.build(be, workload);
        ModelConfig m = workload.model();
        kernel = onGpu() ? be.describeKernels(new ScanShape(m.tttType(), m.headDim(), m.miniBatch(), workload.dtype(),
                (long) workload.batch() * m.heads(), workload.checkpointInterval()), workload.backward()) : null;
        be.synchronize();
        timed = TimedWork.prepare(be, work::run, graph, System.err);
        if (deviceWarmup && onGpu()) {
            System.err.println(DeviceWarmup.run(timed::run).describe());
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (be == null) return;
        new RunInfo(be.name(), be.device(), be.peakMemoryBytes(), verified,
                onGpu() && timed != null ? timed.launch().label() : null, check == null ? null : check.seed(),
                check == null ? null : check.kernel(), kernel).publish();
        be.close();
    }

    private boolean onGpu() {
        return !be.name().equals("cpu");
    }

    private Tensor timed() {
        timed.run();
        return work.output();
    }

    /** The full model forward: logits [B, L, V]. */
    @Benchmark
    public Tensor forward() {
        return timed();
    }

    /** Forward, then the gradient of sum(logits) for every parameter. */
    @Benchmark
    public Tensor backward() {
        return timed();
    }

    /** The inner scan alone on precomputed XQ, XK, XV, lr, tok: out [B, L, D]. */
    @Benchmark
    public Tensor innerForward() {
        return timed();
    }

    /** Inner forward, then the gradient of sum(out). */
    @Benchmark
    public Tensor innerBackward() {
        return timed();
    }
}
