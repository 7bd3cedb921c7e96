package org.tttbench.backend;

/** Token ids [B, L] owned by one backend. */
public interface TokenIds {
    int batch();

    int seqLen();
}
