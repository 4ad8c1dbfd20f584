#!/usr/bin/env bash
# `make fuzz`: runs every cargo-fuzz target (fuzz/fuzz_targets/) for a bounded time and fails if one
# finds a crash (a panic, a broken property in fuzz/harness.rs, a timeout or running out of memory).
#
#   FUZZ_SECONDS=60       seconds per target
#   FUZZ_TARGETS="a b"    only these targets (default: all)
#   FUZZ_SANITIZER=none   cargo fuzz's -s (address, none...). cellnet forbids unsafe code, so the
#                         default is none: no ASan slowdown; overflow checks and debug assertions
#                         stay on (-a), and libFuzzer's own memory limit catches unbounded allocation.
#
# Builds go to fuzz/target (fuzz/ is a workspace of its own), never locking the main target/.
# New corpus entries are kept in fuzz/corpus/<target> (not committed), so a warm run starts from
# what earlier runs found; fuzz/seeds/<target> holds the committed seed inputs. A crash input is
# written to fuzz/artifacts/<target>/: keep it as a regression test by copying it to
# fuzz/regressions/<target>/ (tests/fuzz_regressions.rs replays those in `make test`).
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh

seconds="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-none}"
targets="${FUZZ_TARGETS:-$(cd fuzz/fuzz_targets && ls -- *.rs | sed 's/\.rs$//' | tr '\n' ' ')}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "cargo fuzz needs a nightly toolchain: rustup toolchain install nightly --profile minimal" >&2
  exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  stage "install cargo-fuzz" cargo install cargo-fuzz --locked
fi

fuzz() { nice -n 10 cargo +nightly fuzz "$@"; }

stage "build fuzz targets ($targets)" fuzz build -s "$sanitizer" -a

logs=fuzz/target/logs
mkdir -p "$logs"
summary=()
failed=0
for target in $targets; do
  mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
  seeds=()
  [[ -d "fuzz/seeds/$target" ]] && seeds=("fuzz/seeds/$target")
  log="$logs/$target.log"
  start=$SECONDS
  printf '==> fuzz %s for %ss\n' "$target" "$seconds" >&2
  # One process, one worker (-jobs=1 -workers=1: the machine is shared). With -jobs, libFuzzer
  # runs the fuzzing in a child that writes fuzz-0.log in the working directory.
  rc=0
  fuzz run -s "$sanitizer" -a "$target" "fuzz/corpus/$target" ${seeds[@]+"${seeds[@]}"} -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
    -jobs=1 -workers=1 >"$log" 2>&1 || rc=$?
  for child in fuzz-0.log fuzz/fuzz-0.log; do
    if [[ -f $child ]]; then cat "$child" >>"$log"; rm -f "$child"; fi
  done
  took=$((SECONDS - start))
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$' || true)"
  if [[ -z "$runs" ]]; then
    runs="$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#' || true)"
  fi
  artifact="$(grep -o 'Test unit written to [^ ]*' "$log" | tail -n 1 | sed 's/.* to //' || true)"
  if [[ $rc -eq 0 && -z "$artifact" ]]; then
    result="ok"
  else
    failed=1
    reason="$(grep -m1 -o 'ERROR: libFuzzer: [a-z-]*\|panicked at [^:]*:[0-9]*\|failed to build.*' "$log" || true)"
    result="FAILED (exit $rc) ${reason:-see $log}${artifact:+; input $artifact}"
  fi
  line="$(printf '%-16s %10s runs %5ss  %s' "$target" "${runs:-?}" "$took" "$result")"
  summary+=("$line")
  printf '<== %s\n' "$line" >&2
done

printf '\n%-16s %15s %6s  %s\n' "target" "runs" "time" "result"
printf '%s\n' "${summary[@]}"
printf 'total %ss; logs in %s\n' "$((SECONDS - _t0))" "$logs"
if [[ $failed -ne 0 ]]; then
  echo "fuzzing found a failure: fix it and keep the input in fuzz/regressions/<target>/ (see tests/fuzz_regressions.rs)" >&2
  exit 1
fi
