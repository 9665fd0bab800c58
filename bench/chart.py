#!/usr/bin/env python3
"""Draws the CSV written by `streamdb_bench --csv FILE` as one PNG: one panel
per measure, one bar per system, the best durable system's bar outlined.

    python3 bench/chart.py bench/results/DATE.csv bench/results/DATE.png

Needs matplotlib (pip install matplotlib).
"""
import csv
import math
import sys
from collections import OrderedDict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {
    "streamdb": "#d62728", "streamdb-quick": "#ff9896", "streamdb-pread": "#e377c2",
    "lmdb": "#1f77b4", "sqlite-full": "#2ca02c", "sqlite-normal": "#98df8a",
    "rocksdb": "#9467bd", "files": "#8c564b", "fdatasync-4KiB": "#7f7f7f",
}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    rows = list(csv.DictReader(open(sys.argv[1], newline="")))
    groups = OrderedDict()
    for r in rows:
        groups.setdefault((r["workload"], r["measure"], r["unit"]), []).append(r)
    n = len(groups)
    cols = 4
    nrows = math.ceil(n / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(cols * 4.6, nrows * 3.0), squeeze=False)
    for ax, ((wl, measure, unit), rs) in zip(axes.flat, groups.items()):
        names = [r["system"] for r in rs]
        vals = [float(r["value"]) for r in rs]
        hb = rs[0]["higher_better"] == "1"
        durable = [v for r, v in zip(rs, vals)
                   if r["nondurable"] == "0" and r["system"] != "fdatasync-4KiB"]
        best = (max(durable) if hb else min(durable)) if durable else None
        bars = ax.barh(names, vals, color=[COLORS.get(s, "#bcbd22") for s in names])
        for b, v in zip(bars, vals):
            if best is not None and v == best:
                b.set_edgecolor("black")
                b.set_linewidth(1.5)
        ax.invert_yaxis()
        ax.set_title("(%s) %s" % (wl, measure), fontsize=8)
        ax.set_xlabel("%s (%s is better)" % (unit, "higher" if hb else "lower"), fontsize=7)
        ax.tick_params(labelsize=7)
        if vals and max(vals) > 0 and min(v for v in vals if v > 0) * 100 < max(vals):
            ax.set_xscale("log")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.suptitle("streamdb_bench: %s" % sys.argv[1], fontsize=10)
    fig.savefig(sys.argv[2], dpi=90)
    print("wrote", sys.argv[2])


if __name__ == "__main__":
    main()
