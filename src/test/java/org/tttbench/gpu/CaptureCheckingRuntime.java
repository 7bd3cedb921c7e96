package org.tttbench.gpu;

import java.lang.foreign.MemorySegment;

/**
 * A runtime that holds the calls issued while a graph is recorded to what a real device allows
 * then ({@link GpuRuntime#beginCapture}): stream work only. Malloc, free, the synchronous copies
 * and synchronize fail during a recording, as they invalidate a CUDA or HIP capture, so that
 * code which would break the recording on a device breaks it in the emulation too.
 */
final class CaptureCheckingRuntime implements GpuRuntime {

    private final GpuRuntime rt;
    private boolean capturing;

    CaptureCheckingRuntime(GpuRuntime rt) {
        this.rt = rt;
    }

    private void notCapturing(String call) {
        if (capturing) throw new GpuException(call + " while a graph is being recorded (not stream work)");
    }

    @Override
    public String name() {
        return rt.name();
    }

    @Override
    public String deviceName() {
        return rt.deviceName();
    }

    @Override
    public String architecture() {
        return rt.architecture();
    }

    @Override
    public int warpSize() {
        return rt.warpSize();
    }

    @Override
    public int multiprocessorCount() {
        return rt.multiprocessorCount();
    }

    @Override
    public int maxSharedMemoryPerBlock() {
        return rt.maxSharedMemoryPerBlock();
    }

    @Override
    public long totalMemory() {
        return rt.totalMemory();
    }

    @Override
    public long malloc(long bytes) {
        notCapturing("malloc");
        return rt.malloc(bytes);
    }

    @Override
    public void free(long devicePtr) {
        notCapturing("free");
        rt.free(devicePtr);
    }

    @Override
    public void copyToDevice(MemorySegment host, long devicePtr, long bytes) {
        notCapturing("copyToDevice");
        rt.copyToDevice(host, devicePtr, bytes);
    }

    @Override
    public void copyToHost(long devicePtr, MemorySegment host, long bytes) {
        notCapturing("copyToHost");
        rt.copyToHost(devicePtr, host, bytes);
    }

    @Override
    public void copyDeviceToDevice(long src, long dst, long bytes) {
        rt.copyDeviceToDevice(src, dst, bytes);
    }

    @Override
    public void memset(long devicePtr, int value, long bytes) {
        rt.memset(devicePtr, value, bytes);
    }

    @Override
    public long loadModule(byte[] image) {
        notCapturing("loadModule");
        return rt.loadModule(image);
    }

    @Override
    public long function(long module, String name) {
        return rt.function(module, name);
    }

    @Override
    public void setMaxDynamicSharedMemory(long function, int bytes) {
        rt.setMaxDynamicSharedMemory(function, bytes);
    }

    @Override
    public void launch(long function, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ,
            int sharedBytes, MemorySegment args) {
        rt.launch(function, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes, args);
    }

    @Override
    public void synchronize() {
        notCapturing("synchronize");
        rt.synchronize();
    }

    @Override
    public void beginCapture() {
        notCapturing("beginCapture");
        rt.beginCapture();
        capturing = true;
    }

    @Override
    public long endCapture() {
        capturing = false;
        return rt.endCapture();
    }

    @Override
    public void launchGraph(long graph) {
        rt.launchGraph(graph);
    }

    @Override
    public void destroyGraph(long graph) {
        rt.destroyGraph(graph);
    }

    @Override
    public long createEvent() {
        notCapturing("createEvent");
        return rt.createEvent();
    }

    @Override
    public void recordEvent(long event) {
        rt.recordEvent(event);
    }

    @Override
    public float elapsedMillis(long start, long end) {
        notCapturing("elapsedMillis");
        return rt.elapsedMillis(start, end);
    }

    @Override
    public void destroyEvent(long event) {
        rt.destroyEvent(event);
    }

    @Override
    public long stream() {
        return rt.stream();
    }

    @Override
    public Blas blas() {
        notCapturing("blas");
        return rt.blas();
    }

    @Override
    public void close() {
        rt.close();
    }
}
