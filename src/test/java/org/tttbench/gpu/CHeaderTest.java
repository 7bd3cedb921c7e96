package org.tttbench.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.ValueLayout;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The header reader on declarations written the ways cuda.h and hip_runtime_api.h write them. */
class CHeaderTest {

    private static final String HEADER = """
            typedef long unsigned int size_t;
            typedef unsigned long long CUdeviceptr_v2;
            typedef CUdeviceptr_v2 CUdeviceptr;
            typedef int CUdevice_v1;
            typedef CUdevice_v1 CUdevice;
            typedef struct CUstream_st *CUstream;
            typedef enum cudaError_enum { CUDA_SUCCESS = 0, CUDA_ERROR_X = 1 } CUresult;
            typedef void (*CUhostFn)(void *userData);
            typedef struct dim3 { unsigned int x, y, z; } dim3;
            __attribute__((visibility("default"))) CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize);
            CUresult cuMemsetD8Async(CUdeviceptr dstDevice, unsigned char uc, size_t N, CUstream hStream);
            CUresult cuDeviceGet(CUdevice *device, int ordinal);
            CUresult cuInit(unsigned int Flags);
            const char *errorString(CUresult);
            void noArgs(void);
            float scale(float, double d, CUhostFn fn, int values[4]);
            CUresult byValue(dim3 grid);
            static inline int helper(int a) { return a + 1; }
            """;

    @Test
    void readsTypesThroughTypedefs() {
        CHeader h = new CHeader(HEADER);
        var alloc = h.function("cuMemAlloc_v2").orElseThrow();
        assertEquals(ValueLayout.JAVA_INT.carrier(), ((ValueLayout) alloc.result()).carrier());
        assertTrue(CHeader.samePassing(ValueLayout.ADDRESS, alloc.params().get(0)));
        assertTrue(CHeader.samePassing(ValueLayout.JAVA_LONG, alloc.params().get(1)));

        var memset = h.function("cuMemsetD8Async").orElseThrow();
        assertTrue(CHeader.samePassing(ValueLayout.JAVA_LONG, memset.params().get(0)), "CUdeviceptr is 64-bit");
        assertTrue(CHeader.samePassing(ValueLayout.JAVA_BYTE, memset.params().get(1)));
        assertTrue(CHeader.samePassing(ValueLayout.ADDRESS, memset.params().get(3)), "a handle is a pointer");

        var get = h.function("cuDeviceGet").orElseThrow();
        assertEquals(List.of(ValueLayout.ADDRESS.byteSize(), 4L), get.params().stream().map(p -> p.byteSize()).toList());
        assertTrue(CHeader.samePassing(ValueLayout.JAVA_INT, h.function("cuInit").orElseThrow().params().get(0)));
        assertTrue(CHeader.samePassing(ValueLayout.ADDRESS, h.function("errorString").orElseThrow().result()));
        assertTrue(CHeader.samePassing(ValueLayout.JAVA_INT, h.function("errorString").orElseThrow().params().get(0)),
                "an unnamed enum parameter");
        assertNull(h.function("noArgs").orElseThrow().result());
        assertEquals(0, h.function("noArgs").orElseThrow().params().size());

        var scale = h.function("scale").orElseThrow();
        assertTrue(CHeader.samePassing(ValueLayout.JAVA_FLOAT, scale.params().get(0)));
        assertTrue(CHeader.samePassing(ValueLayout.JAVA_DOUBLE, scale.params().get(1)));
        assertTrue(CHeader.samePassing(ValueLayout.ADDRESS, scale.params().get(2)), "function pointer typedef");
        assertTrue(CHeader.samePassing(ValueLayout.ADDRESS, scale.params().get(3)), "array parameter");

        assertFalse(CHeader.samePassing(ValueLayout.JAVA_INT, h.function("byValue").orElseThrow().params().get(0)),
                "a struct by value is not an int");
        assertTrue(h.function("helper").isEmpty(), "inline definitions are not declarations to bind");
    }

    @Test
    void aMismatchIsSeen() {
        CHeader h = new CHeader(HEADER);
        var alloc = h.function("cuMemAlloc_v2").orElseThrow();
        assertFalse(CHeader.samePassing(ValueLayout.JAVA_INT, alloc.params().get(1)), "size_t is not int");
        assertFalse(CHeader.samePassing(ValueLayout.JAVA_LONG, alloc.params().get(0)), "a pointer is not a long");
        assertTrue(h.mentions("CUDA_ERROR_X"));
        assertFalse(h.mentions("CUDA_ERROR"));
    }
}
