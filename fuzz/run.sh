#!/usr/bin/env bash
# Runs the fuzz targets, each for FUZZ_SECONDS (default 60), from the corpus that seed.sh
# made, and prints libFuzzer's closing line (executions) and any finding. Findings are saved
# in fuzz/artifacts/<target>/, the full log in fuzz/artifacts/<target>.log.
# Usage: fuzz/run.sh [target...]    (default: all nine)
# FUZZ_SANITIZER=none when the sanitizer runtime is unavailable.
set -uo pipefail
cd "$(dirname "$0")/.."
secs="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-address}"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(pdf docx xlsx pptx csv eml html markdown plain)
# Sanitizer builds go to fuzz/target, never into the main workspace's cache.
unset CARGO_TARGET_DIR
export RUSTC_BOOTSTRAP=1
mkdir -p fuzz/artifacts
status=0
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    cargo fuzz run -s "$sanitizer" "$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"fuzz/artifacts/$t.log" 2>&1 || status=1
    runs=$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "fuzz/artifacts/$t.log" | tail -1)
    finding=$(grep -Eo '(crash|timeout|oom|leak|slow-unit)-[0-9a-f]+' "fuzz/artifacts/$t.log" | head -1)
    echo "$t: ${runs:-no closing line (see fuzz/artifacts/$t.log)} ${finding:+FOUND $finding}"
done
exit $status
