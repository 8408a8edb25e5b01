"""utils/for_each_set.sh: stages 12-13 run per-set work in parallel with readable, ordered logs."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A set's work: records how many calls run at once, sleeps (the first set longest, so that it
# finishes last), prints two lines, and fails for the set named "bad".
SCRIPT = """
set -euo pipefail
. {root}/utils/for_each_set.sh
parallel_sets={parallel_sets}
work() {{
    local running
    touch "{tmp}/running.$1"
    running=$(ls "{tmp}" | grep -c '^running\\.')
    echo "$running" >> "{tmp}/concurrency"
    echo "$1 starts"
    case "$1" in first) sleep 1.5 ;; *) sleep 0.3 ;; esac
    rm "{tmp}/running.$1"
    [ "$1" != bad ]
    echo "$1 done"
}}
for_each_set work {sets}
echo "all done"
"""


def run_sets(tmp_path, parallel_sets, sets):
    script = SCRIPT.format(root=ROOT, tmp=tmp_path, parallel_sets=parallel_sets, sets=" ".join(sets))
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    concurrency = [int(n) for n in (tmp_path / "concurrency").read_text().split()]
    return result, concurrency


def test_parallel_outputs_come_in_set_order_and_at_most_n_run_at_once(tmp_path):
    sets = ["first", "second", "third", "fourth"]
    result, concurrency = run_sets(tmp_path, 2, sets)
    assert result.returncode == 0, result.stderr
    expected = [line for name in sets for line in (f"{name} starts", f"{name} done")] + ["all done"]
    assert result.stdout.splitlines() == expected
    assert max(concurrency) == 2


def test_one_at_a_time_by_default_setting(tmp_path):
    result, concurrency = run_sets(tmp_path, 1, ["first", "second"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["first starts", "first done", "second starts", "second done", "all done"]
    assert concurrency == [1, 1]


def test_a_failed_set_fails_the_caller_after_the_others_finish(tmp_path):
    result, _ = run_sets(tmp_path, 2, ["first", "bad", "third"])
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines == ["first starts", "first done", "bad starts", "third starts", "third done"]
    assert "all done" not in result.stdout
    assert "work failed" in result.stderr


def test_a_failed_set_stops_a_sequential_run_at_once(tmp_path):
    result, _ = run_sets(tmp_path, 1, ["bad", "third"])
    assert result.returncode != 0
    assert result.stdout.splitlines() == ["bad starts"]


def test_parallel_sets_share_the_thread_budget(tmp_path):
    def threads_seen(parallel_sets, omp_threads):
        script = (f". {ROOT}/utils/for_each_set.sh; parallel_sets={parallel_sets}; "
                  'show() { echo "$1 $OMP_NUM_THREADS"; }; for_each_set show a b')
        env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": str(omp_threads)}
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, check=True)
        return result.stdout.split()

    assert threads_seen(2, 4) == ["a", "2", "b", "2"]
    assert threads_seen(4, 2) == ["a", "1", "b", "1"]
    assert threads_seen(1, 4) == ["a", "4", "b", "4"]
