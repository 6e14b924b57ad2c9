# Shared by the accuracy studies (bench/paper/run.sh, bench/tricks/run.sh, bench/recipe/run.sh): sourced, not
# run. Each study is a list of `bertfit` runs whose metrics are appended to one results.tsv; these are the parts
# they share.
#
# Before sourcing, set OUT, DATA and JOBS. After it: BF (the binary, built if missing), CPU (the machine's model
# name, recorded next to every figure), THREADS (cores per run: the machine's cores shared by JOBS runs), and the
# functions below. The demo's data is made in DATA when it is missing.

export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}  # as the demo: runs share the cores
BF=${BERTFIT:-build/src/cli/bertfit}
[[ -x $BF ]] || { cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null; cmake --build build -j2 --target bertfit; }
[[ -f $DATA/data/train.tsv && -d $DATA/tokenizer ]] || bash scripts/demo.sh --data-only --skip-setup --out "$DATA"
mkdir -p "$OUT/runs"
RES=$OUT/results.tsv
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
THREADS=$(($(nproc) / JOBS > 0 ? $(nproc) / JOBS : 1))

# A number from a flat JSON file (eval_results.json, evaluate's --output).
field() { sed -n "s/^ *\"$2\": \([0-9.eE+-]*\),*$/\1/p" "$1" | head -1; }
# Whether results.tsv already has configuration $1 with seed $2 (the studies resume by skipping those).
done_already() {
  awk -F'\t' -v n="$1" -v s="$2" '$1 == n && $2 == s { found = 1 } END { exit !found }' "$RES"
}
# A pool of background runs: pool_wait N returns once fewer than N are running. A failed run sets FAILED, and the
# study stops after the runs in flight have finished (pool_wait 1, then check FAILED).
FAILED=0
pool_wait() {
  while (($(jobs -rp | wc -l) >= $1)); do wait -n || FAILED=1; done
}
