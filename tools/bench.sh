#!/bin/bash
# Runs filerepo's benchmarks (tests/bench/bench_*.py) against the peers
# measured in the same run, on private services it starts and stops.  Not a
# test: prints medians and ratios.
# Usage: tools/bench.sh [indexer|publisher|query|transfers ...]   (default: all)
# Sizes: see each tests/bench/bench_*.py.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd -P)
# Fresh services for every run unless told otherwise: an ejabberd that kept
# the nodes of earlier runs gets slower with each, and so would the figures.
fresh=
if [ -z "${FILEREPO_BENCH_SERVICES:-}" ]; then
    fresh=$(mktemp -d /tmp/filerepo-bench-services.XXXXXX)
    chmod 0755 "$fresh"  # the services run as their own users
    trap 'rm -rf "$fresh"' EXIT
fi
dir=${FILEREPO_BENCH_SERVICES:-$fresh/services}
which=("$@")
if [ ${#which[@]} -eq 0 ]; then
    which=()
    for f in "$src"/tests/bench/bench_*.py; do
        b=${f##*/bench_}
        which+=("${b%.py}")
    done
fi
for b in "${which[@]}"; do
    [ -f "$src/tests/bench/bench_$b.py" ] || { echo "bench: no benchmark \"$b\"" >&2; exit 64; }
done
"$src/tools/deps.sh"
cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$src/build" -j"$(nproc)" >/dev/null
"$src/tools/services.sh" start "$dir" >/dev/null
trap '"$src/tools/services.sh" stop "$dir" >/dev/null; [ -z "$fresh" ] || rm -rf "$fresh"' EXIT
for b in "${which[@]}"; do
    echo "== benchmark: $b"
    FILEREPO_SERVICES_DIR=$dir FILEREPO_SOURCE_DIR=$src FILEREPOD=$src/build/filerepod \
    FILEREPO=$src/build/filerepo PYTHONDONTWRITEBYTECODE=1 \
        /usr/bin/python3 "$src/tests/bench/bench_$b.py"
done
