package org.tttbench.backend;

/**
 * The inner-scan kernels a backend runs, by name, one per direction: what it chose for a
 * {@link ScanShape} ({@link Backend#kernels}), one of the kernels it could run instead
 * ({@link Backend#kernelOptions}), or what a check or timing forces ({@link Backend#force}).
 * A null name leaves that direction to the backend's own choice; a backend without kernels to
 * choose from (the CPU) reports "cpu".
 *
 * @param forward  the kernel of the forward scan (hip/ entry point without its dtype suffix), or null
 * @param backward the kernel that tells the backward's form apart (its chain or walk), or null
 */
public record KernelChoice(String forward, String backward) {

    /** Each direction the backend's own choice. */
    public static final KernelChoice OWN = new KernelChoice(null, null);

    public static KernelChoice forward(String kernel) {
        return new KernelChoice(kernel, null);
    }

    public static KernelChoice backward(String kernel) {
        return new KernelChoice(null, kernel);
    }

    /** "forward / backward", the names only where given. */
    public String label() {
        if (forward != null && backward != null) return forward + " / " + backward;
        return forward != null ? forward : backward != null ? backward : "own choice";
    }
}
