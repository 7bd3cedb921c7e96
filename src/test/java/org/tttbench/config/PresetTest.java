package org.tttbench.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class PresetTest {

    @Test
    void presetsMatchTheSpecTable() {
        assertEquals(new Preset("125m-h32", 768, 12, 24, 2048), Preset.byName("125m-h32"));
        assertEquals(96, Preset.byName("760m").model(TttType.LINEAR, 16).headDim());
        assertEquals(Preset.byName("1b"), Preset.byName("1.3b"));
        assertEquals(7, Preset.ALL.size());
        assertThrows(IllegalArgumentException.class, () -> Preset.byName("13b"));
    }

    @Test
    void parameterCountsFollowTheReferenceLayout() {
        // 125m TTT layer of the reference driver, projections included.
        assertEquals(2_421_532L, Preset.byName("125m").model(TttType.LINEAR, 16).tttLayerParameterCount());
        ModelConfig m = Preset.byName("1b").model(TttType.LINEAR, 16);
        // About 1.3 B with the embedding, as the preset's alias says.
        long n = m.parameterCount();
        assertEquals(1.3e9, n, 0.1e9);
    }
}
