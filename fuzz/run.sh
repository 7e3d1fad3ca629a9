#!/bin/sh
# Runs the fuzz targets (FUZZING.md) with cargo-fuzz on the stable toolchain, one at a time, at
# low priority (nice) so that a shared machine stays usable.
#
#   fuzz/run.sh [--execs N] [--seconds S] [TARGET...]
#                                         the long run: N executions per target (default 10
#                                         million), or S seconds if that comes first (default
#                                         no limit), growing fuzz/corpus/TARGET from the
#                                         committed seeds; the results table in FUZZING.md
#                                         is rewritten with the figures of this run; a target
#                                         that fails does not stop the others
#   fuzz/run.sh --smoke [TARGET...]       what `make test` runs: every target built, its seeds
#                                         (and regression inputs) replayed once each, without
#                                         mutation, so that make test stays deterministic
#
# Installs cargo-fuzz from crates.io when it is missing. A crash, a panic, a hang (an input
# taking more than 10 s) or an out-of-memory ends the run with an error; libFuzzer leaves the
# input in fuzz/artifacts/TARGET/.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

execs=10000000
seconds=0
smoke=0
while [ $# -gt 0 ]; do
    case "$1" in
        --execs) execs=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --smoke) smoke=1; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "run.sh: installing cargo-fuzz (cargo install --locked cargo-fuzz)" >&2
    cargo install --locked cargo-fuzz
fi

targets=${*:-$(cargo fuzz list)}
# Stable toolchain: no sanitizer (ASan needs nightly); Rust's own checks stay on (debug
# assertions and integer overflow checks), so an overflow is a finding too.
flags="--sanitizer none --debug-assertions"
libfuzzer="-timeout=10 -rss_limit_mb=2048 -print_final_stats=1"
# A panic still prints its backtrace (RUST_BACKTRACE), but anyhow's errors do not capture one:
# with RUST_BACKTRACE=1 in the environment, each error the fence dialogue builds unwound the
# stack, a sixth of the apcsmart target's time, and production never runs that way.
export RUST_LIB_BACKTRACE=0

started=$(date +%s)
nice -n 10 cargo fuzz build $flags
echo "run.sh: targets built in $(( $(date +%s) - started )) s" >&2

if [ "$smoke" = 1 ]; then
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/hastack-fuzz.XXXXXX")
    trap 'rm -rf "$scratch"' EXIT
    # The binaries cargo fuzz built, run directly: a cargo check per target would cost more
    # than the fuzzing itself.
    bin="target/$(rustc -vV | sed -n 's/^host: //p')/release"
    for t in $targets; do
        mkdir -p "$scratch/$t" "artifacts/$t"
        # Every seed and regression input once (-runs=0: the corpus, no mutation), so that make
        # test is deterministic: a new finding comes from the long run, never from CI by chance.
        if ! nice -n 10 "$bin/$t" -runs=0 "seeds/$t" $libfuzzer -artifact_prefix="artifacts/$t/" \
            >"$scratch/$t.log" 2>&1; then
            tail -n 40 "$scratch/$t.log" >&2
            echo "run.sh: target $t FAILED (input in fuzz/artifacts/$t/)" >&2
            exit 1
        fi
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$t.log")
        echo "run.sh: $t: seeds replayed, $runs executions, no finding" >&2
    done
    exit 0
fi

# The long run: one target after the other. Each target's figures go to results/TARGET.row
# (committed, so that a run of some targets keeps the others' rows); its log beside it.
mkdir -p results corpus
failed=""
for t in $targets; do
    mkdir -p "corpus/$t"
    log="results/$t.log"
    # Built before the clock starts (a no-op unless the sources changed since the build above).
    nice -n 10 cargo fuzz build $flags "$t"
    t0=$(date +%s)
    if ! nice -n 19 cargo fuzz run $flags "$t" "corpus/$t" "seeds/$t" -- $libfuzzer -runs="$execs" \
        -max_total_time="$seconds" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "run.sh: target $t FAILED after $(( $(date +%s) - t0 )) s (input in fuzz/artifacts/$t/)" >&2
        echo "| $t | $(date -u +%Y-%m-%d) | FAILED: finding in fuzz/artifacts/$t/ | | | | | |" >"results/$t.row"
        failed="$failed $t"
        continue
    fi
    # libFuzzer's own count of seconds spent fuzzing (the wall clock as a fallback).
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")
    secs=${secs:-$(( $(date +%s) - t0 ))}
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
    files=$(find "corpus/$t" -type f | wc -l)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1 | sed 's/cov: \([0-9]*\) ft: \([0-9]*\)/\1 \/ \2/')
    echo "| $t | $(date -u +%Y-%m-%d) | $runs | $secs s | $rate | $files | $cov | $rss MB |" >"results/$t.row"
    echo "run.sh: $t: $runs executions in $secs s, corpus $files files, cov/ft $cov" >&2
done

# Every target's latest figures into FUZZING.md, between its markers.
table=results/table.md
{
    echo "Machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), \
$(free -g | awk '/^Mem:/ {print $2}') GB, $(rustc --version | cut -d' ' -f1-2), $(cargo fuzz --version)."
    echo
    echo "| target | date | executions | time | exec/s | corpus (files) | coverage (cov / ft) | peak RSS |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    for t in $(cargo fuzz list); do
        if [ -f "results/$t.row" ]; then cat "results/$t.row"; else echo "| $t | not run | | | | | | |"; fi
    done
} >"$table"
if [ -f ../FUZZING.md ]; then
    {
        sed '/<!-- results:start -->/q' ../FUZZING.md
        cat "$table"
        sed -n '/<!-- results:end -->/,$p' ../FUZZING.md
    } >../FUZZING.md.new
    mv ../FUZZING.md.new ../FUZZING.md
fi
echo "run.sh: done in $(( $(date +%s) - started )) s; table in fuzz/$table" >&2
if [ -n "$failed" ]; then
    echo "run.sh: FAILED:$failed" >&2
    exit 1
fi
