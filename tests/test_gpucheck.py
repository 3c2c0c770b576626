"""`python -m autograder gpu-check`, the one prepared call for a lent GPU, tested without one: it
refuses in one line, and `--cpu-smoke` runs its whole plan at CPU sizes and writes nothing."""
import json
import types

from autograder import chapters, gpucheck
from conftest import run_cli


def test_refuses_without_cuda_in_one_line():
    done = run_cli("gpu-check", "--chapter", "01-merge")
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "CUDA" in done.stderr


def test_cpu_smoke_runs_the_whole_plan_and_records_nothing(tmp_path):
    done = run_cli("gpu-check", "--cpu-smoke", "--out", tmp_path, timeout=600)
    assert done.returncode == 0, f"gpu-check --cpu-smoke failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    table = (tmp_path / "gpu-check.txt").read_text()
    for slug in chapters.slugs():
        row = next((line for line in table.splitlines() if line.startswith(slug)), None)
        assert row, f"no row for {slug} in the table:\n{table}"
        passed, total = (int(x) for x in row.split()[1].split("/"))
        assert passed == total > 0, f"{slug}: the solutions failed hidden cases in the smoke run:\n{table}"
    assert json.loads((tmp_path / gpucheck.RECORDS).read_text()) == {}, "a CPU run must record no GPU figures"
    assert "01-merge" in table and "merge_triton" not in done.stderr


def test_solution_code_keeps_solutions_and_drops_tests():
    code = gpucheck.solution_code("01-merge")
    assert "def merge(" in code and "def triton_merge(" in code
    assert "verify(" not in code and "assert " not in code.split("def merge(")[0]


def test_a_wrong_solution_is_reported(monkeypatch):
    result = gpucheck.Result("01-merge")
    wrong = types.SimpleNamespace(merge=lambda nums1, m, nums2, n: None,  # leaves nums1 as it was
                                  merge_path_partition=None, triton_merge=None)
    monkeypatch.setattr(chapters.reference("01-merge"), "EXERCISES",
                        {"merge": chapters.exercise("01-merge", "merge")})
    gpucheck._check_cases("01-merge", wrong, result, seed=0, limit=3)
    assert result.passed < result.cases == 3 and result.failures
    assert result.failures[0].startswith("merge fails when"), result.failures


def test_unpack_writes_each_record_and_refuses_a_foreign_one(tmp_path, monkeypatch):
    monkeypatch.setattr(chapters, "data", lambda slug: tmp_path / "data" / f"{slug}.json")
    record = {"chapter": "01-merge", "device": "NVIDIA H200", "figures": {"sizes": [1]}}
    path = tmp_path / gpucheck.RECORDS
    path.write_text(json.dumps({"01-merge": record}))
    assert gpucheck.unpack(path) == [tmp_path / "data" / "01-merge.json"]
    assert json.loads((tmp_path / "data" / "01-merge.json").read_text()) == record
    path.write_text(json.dumps({"01-merge": {**record, "chapter": "04-flash-attention"}}))
    try:
        gpucheck.unpack(path)
    except ValueError as e:
        assert "not a bench record" in str(e)
    else:
        raise AssertionError("a record naming another chapter must be refused")


def test_targets_judge_recorded_figures():
    merge = chapters.reference("01-merge")
    figures = {"sizes": [2**20], "triton_merge_gbps": [900.0], "torch_sort_gbps": [300.0], "copy_gbps": [4000.0]}
    assert [met for _, met in merge.targets(figures)] == [True, False]
    fa = chapters.reference("04-flash-attention")
    figures = {"sizes": [2048, 4096], "triton_d64_full_tflops": [100, 300], "sdpa_d64_full_tflops": [100, 400]}
    assert [met for _, met in fa.targets(figures)] == [True]
