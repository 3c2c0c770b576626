"""Chapter 00 references: the four Triton kernels agree with their float64 specs on strided views,
the chapter's modules named `triton` do not shadow the real package, the reference kernels pass
every rule the exercises state, and the checks fail, with teaching messages, when a rule is
broken."""
import sys

import numpy as np
import pytest
import torch

from autograder import verifier
from autograder.cases import triton as C
from autograder.reference import triton as R

NAMES = {"add": "add_kernel", "softmax_rows": "softmax_kernel", "matmul": "matmul_kernel",
         "cumsum_rows": "cumsum_kernel"}


def _as_learners(got, name):
    """A recorded run of a reference kernel, read as if the notebook had defined it under the
    exercise's kernel name."""
    if "kernels" not in got or not len(np.atleast_1d(got["kernels"])):
        return got
    n = len(np.atleast_1d(got["kernels"]))
    return {**got, "kernels": np.array([NAMES[name]] * n), "kernel_modules": np.array(["__main__"] * n)}


def _verdict(name, fn, case):
    ex = R.EXERCISES[name]
    got = _as_learners(verifier._run(ex, fn, case), name)
    try:
        ex.check(case, got, ex.reference(case))
    except AssertionError as e:
        return str(e)
    return None


def _case(name, kind):
    return next(c for c in R.EXERCISES[name].cases(np.random.default_rng(0)) if c.kind.startswith(kind))


def test_modules_named_triton_do_not_shadow_the_package():
    import triton

    assert R.triton is triton and C.__name__ == "autograder.cases.triton"
    assert triton.__file__ != C.__file__ and hasattr(triton, "jit")
    assert sys.modules["triton"] is triton


def test_reference_kernels_match_their_specs_on_strided_views():
    rng = np.random.default_rng(1)
    x = C.vector_view(rng.standard_normal(1001).astype(np.float32), 3)
    assert torch.equal(R.add_triton(x, x, block=256), x + x)
    s = C.matrix_view((rng.standard_normal((5, 300)) * 1e4).astype(np.float32), "wide")
    assert torch.allclose(R.softmax_triton(s).double(), R.softmax_spec(s.double()), atol=1e-6)
    a = C.matrix_view(rng.standard_normal((37, 70)).astype(np.float32), "transposed")
    b = C.matrix_view(rng.standard_normal((70, 41)).astype(np.float32), "every other row")
    assert torch.allclose(R.matmul_triton(a, b, 32, 32, 16).double(), R.matmul_spec(a, b).double(), atol=1e-4)
    c = C.matrix_view(rng.standard_normal((2, 3000)).astype(np.float32), "wide")
    got = R.cumsum_triton(c, chunk=256).double()
    assert (got - R.cumsum_spec(c)).abs().le(torch.from_numpy(C.cumsum_tolerance(c.numpy()))).all()


def test_reference_kernels_pass_every_rule_but_ownership():
    for name, fn in R.REFERENCES.items():
        ex = R.EXERCISES[name]
        for case in ex.cases(np.random.default_rng(3)):
            got = verifier._run(ex, fn, case)
            if "kernel_modules" in got and len(np.atleast_1d(got["kernel_modules"])):
                assert str(np.atleast_1d(got["kernel_modules"])[0]) == "autograder.reference.triton"
            got = _as_learners(got, name)
            ex.check(case, got, ex.reference(case))
            if name == "cumsum_rows":
                assert int(got["scans_per_program"]) >= 1 and int(got["loop_iterations"]) >= 1, case.kind


def test_cases_are_deterministic_per_seed():
    for name, ex in R.EXERCISES.items():
        one, two = ex.cases(np.random.default_rng(5)), ex.cases(np.random.default_rng(5))
        assert [c.kind for c in one] == [c.kind for c in two], name
        for c1, c2 in zip(one, two):
            for p, q in zip(c1.args, c2.args):
                assert np.array_equal(np.asarray(p), np.asarray(q)), name


def test_host_side_work_and_copies_are_refused():
    case = _case("add", "n = 1000")
    msg = _verdict("add", lambda x, y: R.add_triton(x.contiguous() * 1, y), case)
    assert "ran torch ops on the host" in msg and "mul" in msg
    strided = _case("add", "n = 777")
    msg = _verdict("add", lambda x, y: R.add_triton(x.contiguous(), y.contiguous()), strided)
    assert "clone" in msg and "pass the strides" in msg
    msg = _verdict("softmax_rows", lambda x: R.softmax_triton(x.float()).to(x.dtype), _case("softmax_rows", "float16"))
    assert "_to_copy" in msg and "element_ty" in msg


def test_tail_past_the_end_is_refused():
    def unmasked(x, y):
        out = torch.empty_like(x)
        R._unmasked_copy[(1,)](x, out, BLOCK=1024)  # 1024 lanes, no mask
        return out

    msg = _verdict("add", unmasked, _case("add", "n = 1000"))
    assert "OutOfBounds" in msg and "mask" in msg


def test_matmul_rules():
    case = _case("matmul", "a is a transposed view")  # K = 70
    msg = _verdict("matmul", lambda a, b: R.matmul_triton(a, b, 64, 64, 128), case)
    assert "BLOCK_K = 128 for K = 70" in msg and "section 7" in msg
    msg = _verdict("matmul", lambda a, b: R.matmul_triton(a, b, 256, 64, 32), case)
    assert "BLOCK_M = 256" in msg
    ex = R.EXERCISES["matmul"]
    got = _as_learners(verifier._run(ex, R.matmul_triton, case), "matmul")
    got["dot_precisions"] = np.array(["fp32 x fp32 tf32"])
    with pytest.raises(AssertionError, match="input_precision"):
        ex.check(case, got, ex.reference(case))
    got = _as_learners(verifier._run(ex, R.matmul_triton, case), "matmul")
    got["loads_per_program"] = np.array(2.0)  # one pair of tiles for three steps over K
    with pytest.raises(AssertionError, match="one tile of a and one of b per step"):
        ex.check(case, got, ex.reference(case))


def test_softmax_rules():
    case = _case("softmax_rows", "R = 3, C = 5")
    assert _verdict("softmax_rows", R.softmax_triton, case) is None
    ex = R.EXERCISES["softmax_rows"]
    got = _as_learners(verifier._run(ex, R.softmax_triton, case), "softmax_rows")
    got["constexprs"] = np.array(["BLOCK=16"])
    with pytest.raises(AssertionError, match="next_power_of_2"):
        ex.check(case, got, ex.reference(case))
    got["out"] = np.full_like(got["out"], np.nan)
    with pytest.raises(AssertionError, match="max before exp"):
        ex.check(case, got, ex.reference(case))


def test_cumsum_rules_and_hints():
    case = _case("cumsum_rows", "R = 3, C = 2500")
    msg = _verdict("cumsum_rows", lambda x: R.cumsum_triton(x, chunk=64), case)
    assert "CHUNK = 64" in msg
    msg = _verdict("cumsum_rows", lambda x: R.cumsum_triton(x, chunk=2048), case)
    assert "CHUNK = 2048" in msg
    ex = R.EXERCISES["cumsum_rows"]
    got = _as_learners(verifier._run(ex, R.cumsum_triton, case), "cumsum_rows")
    got["out"] = got["out"] - case.args[0]  # exclusive
    with pytest.raises(AssertionError, match="inclusive"):
        ex.check(case, got, ex.reference(case))
    got = _as_learners(verifier._run(ex, R.cumsum_triton, case), "cumsum_rows")
    got["out"][:, 1024:] -= got["out"][:, 1023:1024]  # the second chunk restarts (the third is off too)
    with pytest.raises(AssertionError, match="carry the running total"):
        ex.check(case, got, ex.reference(case))
    got = _as_learners(verifier._run(ex, R.cumsum_triton, case), "cumsum_rows")
    got["scans_per_program"] = np.array(0)
    with pytest.raises(AssertionError, match="scan every chunk"):
        ex.check(case, got, ex.reference(case))


def test_messages_show_no_expected_values():
    case = _case("softmax_rows", "R = 3, C = 5")
    want = R.EXERCISES["softmax_rows"].reference(case)["out"]
    msg = _verdict("softmax_rows", lambda x: R.softmax_triton(x * 2), case)
    assert msg is not None and not any(f"{v:.3g}" in msg for v in want.ravel()[:5])


def test_matmul_without_tl_dot_is_refused():
    case = _case("matmul", "M = 37")
    ex = R.EXERCISES["matmul"]
    got = _as_learners(verifier._run(ex, R.matmul_triton, case), "matmul")
    got["dot_precisions"] = np.array([], dtype=str)
    with pytest.raises(AssertionError, match="ran no tl.dot"):
        ex.check(case, got, ex.reference(case))
