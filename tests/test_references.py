"""The grader's own parts: the references agree with their specs, the comparison fails when it
should (and says where, without showing expected values), forbidden calls are found wherever the
learner hides them, and recorded outputs are judged again outside the learner's process."""
import re

import numpy as np
import pytest
import torch

from autograder import chapters, forbidden, verifier
from autograder.reference import merge as M
from autograder.tolerance import compare


# ---------------------------------------------------------------- chapter 01 references

@pytest.mark.parametrize("m,n", [(0, 0), (0, 5), (5, 0), (1, 1), (17, 1000), (1500, 700), (4096, 4096)])
@pytest.mark.parametrize("dtype", [torch.int32, torch.float32])
def test_triton_merge_matches_the_stable_spec(m, n, dtype):
    gen = torch.Generator().manual_seed(m * 7919 + n)
    a = torch.randint(-50, 50, (m,), generator=gen).to(dtype).sort().values
    b = torch.randint(-50, 50, (n,), generator=gen).to(dtype).sort().values
    got = M.merge_triton(a, b, block=256).numpy()
    want = M.stable_merge(a.numpy(), b.numpy())
    compare(got, want, "merge_triton", exact=True)


def test_triton_merge_reads_views_correctly():
    x = torch.arange(20, dtype=torch.int32)
    assert M.merge_triton(x[::2], x[1::2]).tolist() == list(range(20)), "a strided view must merge like its copy"


def test_co_rank_satisfies_its_definition():
    rng = np.random.default_rng(1)
    for _ in range(30):
        a, b = (np.sort(rng.integers(0, 4, rng.integers(0, 12))) for _ in range(2))
        m, n = len(a), len(b)
        for d in range(m + n + 1):
            i, j = M.co_rank(a, b, d), d - M.co_rank(a, b, d)
            assert max(0, d - n) <= i <= min(d, m)
            assert i == 0 or j == n or a[i - 1] <= b[j], "a[i-1] <= b[d-i]"
            assert j == 0 or i == m or b[j - 1] < a[i], "b[d-i-1] < a[i]: ties come from a first"
    with pytest.raises(ValueError):
        M.co_rank(np.array([1]), np.array([2]), 3)


@pytest.mark.parametrize("name", list(M.EXERCISES))
def test_cases_are_deterministic_per_seed(name):
    ex = M.EXERCISES[name]
    one, two = ex.cases(np.random.default_rng(5)), ex.cases(np.random.default_rng(5))
    assert [c.kind for c in one] == [c.kind for c in two]
    for c1, c2 in zip(one, two):
        for x, y in zip(c1.args, c2.args):
            np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------- comparison and tolerance

def test_compare_names_where_and_how_much_but_not_the_value():
    want = np.linspace(0, 1, 50, dtype=np.float32)
    got = want.copy()
    got[17] += 0.03
    with pytest.raises(AssertionError, match=r"max \|err\| 0\.03 at index \(17,\), tolerance 1e-05") as e:
        compare(got, want, "out")
    assert str(want[17])[:6] not in str(e.value)
    compare(want.copy(), want, "out")


@pytest.mark.parametrize("got,match", [
    (np.zeros(3, np.int64), "shape"), (np.zeros(4, np.int32), "dtype"), (np.array([0, 1, 2, 4]), "1 of 4 elements differ"),
])
def test_compare_catches_each_kind_of_mismatch(got, match):
    with pytest.raises(AssertionError, match=match):
        compare(got, np.array([0, 1, 2, 3]), "out")


def test_exact_compare_tells_signed_zeros_apart():
    compare(np.array([0.0, -0.0]), np.array([0.0, -0.0]), "out", exact=True)
    with pytest.raises(AssertionError):
        compare(np.array([-0.0, 0.0]), np.array([0.0, -0.0]), "out", exact=True)


# ---------------------------------------------------------------- forbidden calls

def _uses_sorted_in_a_helper(nums1, m, nums2, n):
    _helper(nums1, m, nums2, n)


def _helper(nums1, m, nums2, n):
    nums1[:] = sorted(nums1[:m] + nums2)


def test_forbidden_call_is_found_in_a_helper():
    with pytest.raises(AssertionError, match="_helper uses `sorted`"):
        forbidden.check(_uses_sorted_in_a_helper, {"sorted"}, "no sorting")


def test_forbidden_call_is_found_in_a_triton_kernel():
    import triton
    import triton.language as tl

    @triton.jit
    def kernel(x_ptr, BLOCK: tl.constexpr):
        tl.store(x_ptr + tl.arange(0, BLOCK), tl.sort(tl.load(x_ptr + tl.arange(0, BLOCK))))

    globals()["kernel_under_test"] = kernel

    def wrapper(x):
        kernel_under_test[(1,)](x, BLOCK=4)

    with pytest.raises(AssertionError, match="kernel uses `sort`"):
        forbidden.check(wrapper, {"sort"}, "no sorting")


def test_forbidden_imports_are_found():
    assert [n for n, _ in forbidden.uses("import heapq\nfrom bisect import insort", {"heapq", "bisect"})] == ["heapq", "bisect"]


# ---------------------------------------------------------------- verify and the record

def _good_partition(a, b, diag):
    if not 0 <= diag <= len(a) + len(b):
        raise ValueError(diag)
    lo, hi = max(0, diag - len(b)), min(diag, len(a))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if a[mid - 1] <= b[diag - mid] else (lo, mid - 1)
    return lo


def test_verify_records_and_the_grader_agrees(tmp_path, monkeypatch):
    monkeypatch.setenv(verifier.SEED_VAR, "1234")
    monkeypatch.setenv(verifier.RECORD_VAR, str(tmp_path))
    verifier.verify("01-merge", "merge_path_partition", _good_partition)
    path = tmp_path / "merge_path_partition.npz"
    assert verifier.check_record("01-merge", "merge_path_partition", 1234, path) is None
    assert "recorded" in verifier.check_record("01-merge", "merge_path_partition", 1234, tmp_path / "none.npz")


def test_a_tampered_record_fails_outside_the_kernel(tmp_path, monkeypatch):
    monkeypatch.setenv(verifier.SEED_VAR, "99")
    monkeypatch.setenv(verifier.RECORD_VAR, str(tmp_path))
    verifier.verify("01-merge", "merge_path_partition", _good_partition)
    path = tmp_path / "merge_path_partition.npz"
    outputs = verifier.load_record(path)
    outputs[0]["i"] = outputs[0]["i"] + 1
    verifier.record(path, outputs)
    assert "fails in 1 of" in verifier.check_record("01-merge", "merge_path_partition", 99, path)
    # a record made for another seed does not pass either: the cases are the grader's
    assert verifier.check_record("01-merge", "merge_path_partition", 100, tmp_path / "missing.npz")


def test_pickled_records_are_refused(tmp_path):
    path = tmp_path / "merge.npz"
    np.savez(path, **{"0.nums1": np.array([object()], dtype=object)})
    assert "cannot be read" in verifier.check_record("01-merge", "merge", 1, path)


def test_unknown_chapter_and_exercise_say_what_exists():
    with pytest.raises(ValueError, match="01-merge"):
        chapters.check("00-nope")
    with pytest.raises(ValueError, match="merge_path_partition"):
        chapters.exercise("01-merge", "nope")


class _Attention:
    def forward(self, x):
        return _softmax_helper(x)


def _softmax_helper(x):
    return x.softmax(-1)


def test_forbidden_call_is_found_in_a_class_method_helper():
    with pytest.raises(AssertionError, match="_softmax_helper uses `softmax`"):
        forbidden.check(_Attention, {"softmax"}, "write it yourself")


def test_a_dotted_entry_refuses_only_the_attribute():
    source = "def mha(x):\n    return scaled_dot_product_attention(x)\n"
    assert forbidden.uses(source, {".scaled_dot_product_attention"}) == []
    assert forbidden.uses("F.scaled_dot_product_attention(q, k, v)", {".scaled_dot_product_attention"})


def test_a_reason_counts_the_failing_cases_and_names_each_kind_of_failure():
    """A bug that fails everywhere is reported as such, not blamed on the first case tried."""
    ex = M.EXERCISES["merge_path_partition"]
    cases = ex.cases(np.random.default_rng(3))

    def off_by_one(a, b, diag):
        if not 0 <= diag <= len(a) + len(b):
            raise ValueError(diag)
        return min(diag, len(a))  # takes a's elements first, whatever the values

    reason = verifier._failures(ex, cases, [verifier._run(ex, off_by_one, c) for c in cases])
    failed = int(re.search(r"fails in (\d+) of (\d+) cases", reason).group(1))
    assert 1 < failed < len(cases), reason  # the empty-array and out-of-range cases still pass
    assert reason.startswith(f"merge_path_partition fails in {failed} of {len(cases)} cases; first: when "), reason
    raising = verifier._failures(ex, cases, [verifier._run(ex, lambda a, b, d: 1 / 0, c) for c in cases])
    assert f"fails in {len(cases)} of {len(cases)} cases" in raising and "raises ZeroDivisionError" in raising
