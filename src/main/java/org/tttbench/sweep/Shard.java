package org.tttbench.sweep;

import java.util.ArrayList;
import java.util.List;

/**
 * A slice of a plan for one machine: shard {@code index} of {@code count}, counted from 1 as
 * Slurm array tasks are. Configuration k of the plan (in plan order, before anything is
 * filtered by what is done or what fits the device, both of which differ between machines)
 * belongs to the shard with k mod count = index − 1, so the shards cover the plan exactly once
 * and sizes spread evenly over them.
 */
public record Shard(int index, int count) {

    public static final Shard ALL = new Shard(1, 1);

    public Shard {
        if (count < 1 || index < 1 || index > count) {
            throw new IllegalArgumentException("--shard must be i/n with 1 <= i <= n, got " + index + "/" + count);
        }
    }

    /** Parses "i/n". */
    public static Shard parse(String text) {
        String[] parts = text.split("/", -1);
        if (parts.length != 2) {
            throw new IllegalArgumentException("--shard must be i/n (for example 2/4), got '" + text + "'");
        }
        try {
            return new Shard(Integer.parseInt(parts[0].strip()), Integer.parseInt(parts[1].strip()));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--shard must be i/n (for example 2/4), got '" + text + "'");
        }
    }

    public <T> List<T> select(List<T> plan) {
        List<T> out = new ArrayList<>();
        for (int k = 0; k < plan.size(); k++) {
            if (k % count == index - 1) out.add(plan.get(k));
        }
        return out;
    }

    @Override
    public String toString() {
        return index + "/" + count;
    }
}
