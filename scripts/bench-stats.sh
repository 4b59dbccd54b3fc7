#!/usr/bin/env bash
# `make bench-stats`: how fast `p11proxy stats` reads traces, in MB/s (a number to read, not a
# test). Writes a synthetic trace in each format, SIZE_MB large (default 256), made of the records
# in Tests/golden/trace (every family of calls, with their real argument lines) with random
# thread ids, increasing start times and log-normal durations; then times `p11proxy stats` over
# each (after one untimed read, so the file is in the page cache) RUNS times and reports the
# median and best MB/s and the peak resident memory.
#   bash scripts/bench-stats.sh                  # CLI_BIN defaults to build/bin/p11proxy
#   SIZE_MB=1024 RUNS=5 bash scripts/bench-stats.sh
# Prints a Markdown table (also build/bench-stats/results.md).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
BUILD=${BUILD_DIR:-build}
CLI=${CLI_BIN:-$BUILD/bin/p11proxy}
SIZE_MB=${SIZE_MB:-256}
RUNS=${RUNS:-3}
OUT=$BUILD/bench-stats
mkdir -p "$OUT"
[[ -x $CLI ]] || { echo "error: $CLI is not built (make cli)" >&2; exit 1; }

# One block of ~4 MB per format with distinct records, repeated up to SIZE_MB (a block's start
# times go on increasing from the last one's, so the span stays meaningful).
python3 - "$SIZE_MB" "$OUT" Tests/golden/trace <<'PY'
import glob, os, random, re, sys
size_mb, out, golden = int(sys.argv[1]), sys.argv[2], sys.argv[3]
random.seed(20261122)
text_records, json_records = [], []
for path in sorted(glob.glob(golden + "/*.txt")):
    record = []
    for line in open(path).read().splitlines():
        if re.match(r"^C_\w+ \[", line) and record:
            text_records.append(record); record = []
        record.append(line)
    if record: text_records.append(record)
for path in sorted(glob.glob(golden + "/*.jsonl")):
    json_records += open(path).read().splitlines()
modules = ["softhsm2", "mock-a", "tpm2"]

def stamp(microseconds):
    seconds, fraction = divmod(microseconds, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return "2026-11-22T%02d:%02d:%02d.%06dZ" % (hours % 24, minute, second, fraction)

def duration():
    return "%.3f" % random.lognormvariate(2.5, 1.5)

for fmt, records in (("txt", text_records), ("jsonl", json_records)):
    target = size_mb << 20
    clock = 3_600_000_000
    block = []
    block_bytes = 0
    while block_bytes < 4 << 20:
        record = random.choice(records)
        clock += random.randint(1, 200)
        tid, module = str(random.randint(4000, 4015)), random.choice(modules)
        if fmt == "txt":
            lines = list(record)
            lines[0] = (lines[0].replace("tid=TID", "tid=" + tid).replace("TIME", stamp(clock))
                        .replace("DURATION", duration() + "us").replace("[mock-a ", "[" + module + " "))
            text = "\n".join(lines) + "\n"
        else:
            text = (record.replace('"TIME"', '"' + stamp(clock) + '"').replace('"TID"', tid)
                    .replace('"DURATION"', duration()).replace('"module":"mock-a"', '"module":"' + module + '"')) + "\n"
        block.append(text)
        block_bytes += len(text)
    data = "".join(block).encode()
    with open(os.path.join(out, "trace." + fmt), "wb") as f:
        written = 0
        while written < target:
            f.write(data)
            written += len(data)
PY

results=$OUT/results.md
{
    echo "| trace | size | records | command | median | best | MB/s (median) | MB/s (best) | peak RSS |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
} >"$results"
for file in "$OUT/trace.txt" "$OUT/trace.jsonl"; do
    bytes=$(stat -c %s "$file")
    cat "$file" >/dev/null
    for options in "" "--by thread"; do
        times=() rss=0
        for ((run = 0; run < RUNS; run++)); do
            # shellcheck disable=SC2086 # options are words
            /usr/bin/time -f "%e %M" -o "$OUT/time" "$CLI" stats $options "$file" >"$OUT/stats.out" 2>"$OUT/stats.err"
            read -r seconds kilobytes <"$OUT/time"
            times+=("$seconds")
            ((kilobytes > rss)) && rss=$kilobytes
        done
        records=$(tail -1 "$OUT/stats.out" | grep -oE '^[0-9]+')
        read -r median best < <(printf '%s\n' "${times[@]}" | sort -n | awk '{t[NR]=$1} END {print t[int((NR+1)/2)], t[1]}')
        mbps() { awk -v b="$bytes" -v s="$1" 'BEGIN { if (s > 0) printf "%.0f", b / 1e6 / s; else print "-" }'; }
        echo "| $(basename "$file") | $((bytes >> 20)) MiB | $records | \`stats ${options:+$options }FILE\` | ${median}s | ${best}s | $(mbps "$median") | $(mbps "$best") | $((rss / 1024)) MiB |" >>"$results"
    done
done
echo "# $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Sources || echo ' + uncommitted changes'), $(nproc) CPUs, SIZE_MB=$SIZE_MB RUNS=$RUNS bash scripts/bench-stats.sh"
cat "$results"
