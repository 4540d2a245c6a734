#!/usr/bin/env bash
# compare-chart.sh DATA PNG: bar charts of requests/s and p99 per workload and target from compare.sh's data
# ("workload target rps p99_us" lines), with gnuplot.
set -euo pipefail
DATA=$1
PNG=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
TARGETS=$(awk '{print $2}' "$DATA" | awk '!seen[$0]++' | tr '\n' ' ')
# One row per workload, one column per target ("?" where a target does not run the workload).
matrix() { # column (3: rps, 4: p99 in ms)
  awk -v col="$1" -v targets="$TARGETS" '
    BEGIN { n = split(targets, t, " ") }
    { v[$1, $2] = (col == 4 ? $col / 1000 : $col); if (!($1 in seen)) { seen[$1] = 1; order[++w] = $1 } }
    END {
      printf "workload"; for (i = 1; i <= n; ++i) printf " %s", t[i]; printf "\n"
      for (k = 1; k <= w; ++k) {
        printf "%s", order[k]
        for (i = 1; i <= n; ++i) printf " %s", ((order[k], t[i]) in v ? v[order[k], t[i]] : "?")
        printf "\n"
      }
    }' "$DATA"
}
matrix 3 >"$TMP/rps.dat"
matrix 4 >"$TMP/p99.dat"
NCOLS=$(echo "$TARGETS" | wc -w)
gnuplot <<GP
set terminal pngcairo size 1400,900 font "DejaVu Sans,11" noenhanced
set output "$PNG"
set datafile missing "?"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top right
set grid ytics
set xtics rotate by 0
set multiplot layout 2,1 title "bffgate and peers, one worker each (higher is better above, lower below)"
set title "requests per second"
set logscale y
plot for [i=2:$((NCOLS + 1))] "$TMP/rps.dat" using i:xtic(1) title columnheader(i)
set title "p99 latency (ms)"
plot for [i=2:$((NCOLS + 1))] "$TMP/p99.dat" using i:xtic(1) title columnheader(i)
unset multiplot
GP
