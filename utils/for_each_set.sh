# for_each_set FUNCTION SET...: call FUNCTION SET for each set, up to ${parallel_sets} at a time.
# Sourced by asr.sh (stages 12-13: test sets are decoded and scored independently of each other).
# With parallel_sets > 1 each call runs in a background subshell and its output is held back, then
# printed when it is done, in the order of the sets, so that a log reads as if they ran in turn.
# The threads of OMP_NUM_THREADS (default: the machine's CPUs) are shared out among the calls: with
# all of them in each call, torch oversubscribes the CPUs and runs several times slower.
# Exits (the sourcing script) with status 1 after all calls finished if any of them failed.

for_each_set() {
    local fn=$1 dset i status=0
    shift
    if [ "${parallel_sets}" -le 1 ] || [ $# -le 1 ]; then
        for dset in "$@"; do "${fn}" "${dset}"; done
        return 0
    fi
    local -a pids=() outputs=()
    local threads=$(( ${OMP_NUM_THREADS:-$(nproc)} / parallel_sets ))
    [ "${threads}" -ge 1 ] || threads=1
    for dset in "$@"; do
        while [ "$(jobs -rp | wc -l)" -ge "${parallel_sets}" ]; do wait -n || true; done
        outputs+=("$(mktemp)")
        ( export OMP_NUM_THREADS=${threads}; "${fn}" "${dset}" ) > "${outputs[-1]}" 2>&1 &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        wait "${pids[${i}]}" || status=1
        cat "${outputs[${i}]}"; rm -f "${outputs[${i}]}"
    done
    [ "${status}" -eq 0 ] || { echo "for_each_set: ${fn} failed on a set (its output is above)" >&2; exit 1; }
}
