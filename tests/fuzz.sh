#!/usr/bin/env bash
# Builds every libFuzzer target (tests/fuzz_*.c) with clang, ASan and UBSan into build-fuzz/
# and runs each for SECONDS (default 60) on seeds taken from the shipped files. Any finding
# (crash, leak, sanitizer report, a unit slower than 10 s, more than 2 GB) stops the run with
# its input under build-fuzz/findings/ and a non-zero exit; a clean run prints one line per
# target with its executions.
#   tests/fuzz.sh [SECONDS] [TARGET...]
# The corpus each target grows is kept in build-fuzz/corpus/TARGET between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
case $secs in '' | *[!0-9]*) echo "usage: tests/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 2 ;; esac

# target: seed folders and files (the shipped data the parser reads)
declare -A seeds=(
  [fuzz_spec]="models hw-profiles"
  [fuzz_scenario]="scenarios tests/fuzz-seeds/scenario"
  [fuzz_cli]="tests/fuzz-seeds/cli"
  [fuzz_ckpt]="../shared/fixtures/stories260K.bin"
  [fuzz_dataset]="tests/fuzz-seeds/dataset"
  [fuzz_trace]="tests/fuzz-seeds/trace"
)
# target: options of its own (the CLI prints on every run: its output is closed)
declare -A flags=(
  [fuzz_cli]="-close_fd_mask=3"
)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(printf '%s\n' "${!seeds[@]}" | sort)

cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DISIM_FUZZ=ON >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]}" >/dev/null

mkdir -p build-fuzz/findings
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for t in "${targets[@]}"; do
  [ -n "${seeds[$t]+x}" ] || { echo "fuzz.sh: no target '$t'" >&2; exit 2; }
  mkdir -p "build-fuzz/corpus/$t"
  log="build-fuzz/$t.log"
  # libFuzzer takes seed folders as arguments and seed files through -seed_inputs
  dirs=() files=()
  for s in ${seeds[$t]}; do
    if [ -d "$s" ]; then dirs+=("$s")
    elif [ -f "$s" ]; then files+=("$s")
    else echo "fuzz.sh: $t: seed $s is missing; the run starts from its corpus alone" >&2
    fi
  done
  extra=()
  [ ${#files[@]} -eq 0 ] || extra=("-seed_inputs=$(IFS=,; echo "${files[*]}")")
  if ! "./build-fuzz/tests/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="build-fuzz/findings/$t-" "${extra[@]}" \
      ${flags[$t]:-} "build-fuzz/corpus/$t" "${dirs[@]}" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz.sh: $t found a defect; its input is in build-fuzz/findings/" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  corpus=$(find "build-fuzz/corpus/$t" -type f | wc -l)
  echo "$t: clean, ${runs} executions in ${secs} s (${rate}/s), corpus ${corpus} inputs"
done
