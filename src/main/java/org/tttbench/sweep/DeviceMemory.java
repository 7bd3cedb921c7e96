package org.tttbench.sweep;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Total memory of the GPUs a sweep will use, asked of the vendor tools when present. */
public final class DeviceMemory {

    private DeviceMemory() {}

    /**
     * The smallest total memory among {@code devices} (all devices when empty), from
     * nvidia-smi, else rocm-smi; empty when neither tool answers, meaning no limit.
     */
    public static OptionalLong detect(List<String> devices) {
        Map<String, Long> perDevice = nvidia();
        if (perDevice.isEmpty()) perDevice = rocm();
        return smallest(perDevice, devices);
    }

    static OptionalLong smallest(Map<String, Long> perDevice, List<String> devices) {
        return perDevice.entrySet().stream()
                .filter(e -> devices.isEmpty() || devices.contains(e.getKey()))
                .mapToLong(Map.Entry::getValue)
                .min();
    }

    /** "0, 81559" lines: index and MiB. */
    static Map<String, Long> parseNvidia(String output) {
        Map<String, Long> out = new TreeMap<>();
        Pattern line = Pattern.compile("\\s*(\\d+)\\s*,\\s*(\\d+)\\s*");
        for (String l : output.split("\\R")) {
            Matcher m = line.matcher(l);
            if (m.matches()) out.put(m.group(1), Long.parseLong(m.group(2)) << 20);
        }
        return out;
    }

    /** rocm-smi --json: {"card0": {"VRAM Total Memory (B)": "17163091968", …}, …}. */
    static Map<String, Long> parseRocm(String output) {
        Map<String, Long> out = new TreeMap<>();
        try {
            JsonNode root = new ObjectMapper().readTree(output);
            for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> card = it.next();
                if (!card.getKey().startsWith("card")) continue;
                JsonNode total = card.getValue().path("VRAM Total Memory (B)");
                if (total.isMissingNode()) continue;
                out.put(card.getKey().substring(4), Long.parseLong(total.asText().trim()));
            }
        } catch (IOException | NumberFormatException e) {
            return Map.of(); // an unexpected format means we know nothing, not that there is no memory
        }
        return out;
    }

    private static Map<String, Long> nvidia() {
        return ask(List.of("nvidia-smi", "--query-gpu=index,memory.total", "--format=csv,noheader,nounits"), true);
    }

    private static Map<String, Long> rocm() {
        return ask(List.of("rocm-smi", "--showmeminfo", "vram", "--json"), false);
    }

    private static Map<String, Long> ask(List<String> command, boolean nvidia) {
        try {
            Process p = new ProcessBuilder(command).redirectErrorStream(false)
                    .redirectError(ProcessBuilder.Redirect.DISCARD).start();
            p.getOutputStream().close();
            byte[] out = p.getInputStream().readAllBytes();
            if (!p.waitFor(20, TimeUnit.SECONDS) || p.exitValue() != 0) {
                p.destroyForcibly();
                return Map.of();
            }
            String text = new String(out, StandardCharsets.UTF_8);
            return nvidia ? parseNvidia(text) : parseRocm(text);
        } catch (IOException e) {
            return Map.of(); // the tool is not installed
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Map.of();
        }
    }
}
