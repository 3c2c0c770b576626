"""The one tolerance table, keyed by dtype, and the comparison every check uses.

A float result passes when |got - want| <= atol + rtol * |want| elementwise (torch.allclose's rule);
integers, booleans and strings must be equal.
"""
import numpy as np

# dtype name -> (atol, rtol). fp16/bf16 are set by their unit roundoff (2^-11, 2^-8) times a few.
TOLERANCE = {
    "float64": (1e-10, 1e-9),
    "float32": (1e-5, 1e-5),
    "float16": (1e-3, 2e-3),
    "bfloat16": (1e-2, 1.6e-2),
}


def tolerance(dtype) -> tuple[float, float]:
    name = str(dtype).replace("torch.", "")
    if name not in TOLERANCE:
        raise KeyError(f"no tolerance for dtype {name}; exact dtypes are compared with ==")
    return TOLERANCE[name]


def compare(got: np.ndarray, want: np.ndarray, what: str, exact: bool = False) -> None:
    """Raise AssertionError describing the first disagreement of `got` with `want`.

    `exact` compares floats bit for bit (a merge moves values, it never computes them, so -0.0 and
    +0.0 must come out in the right order). The message names shapes, dtypes and where the error
    is, never the expected values, so it can be shown to a learner without leaking the reference.
    """
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        raise AssertionError(f"{what}: output has shape {got.shape}, expected shape {want.shape}")
    if got.dtype != want.dtype:
        raise AssertionError(f"{what}: output has dtype {got.dtype}, expected {want.dtype}")
    if want.dtype.kind == "f" and exact:
        got, want = got.view(f"u{got.itemsize}"), want.view(f"u{want.itemsize}")
    if want.dtype.kind == "f":
        atol, rtol = tolerance(want.dtype)
        g, w = got.astype(np.float64), want.astype(np.float64)
        same_inf = np.isinf(w) & (g == w)
        err = np.where(same_inf, 0.0, np.abs(g - w))
        bad = ~(err <= atol + rtol * np.abs(w)) & ~(np.isnan(g) & np.isnan(w))
        nan = np.isnan(g) & ~np.isnan(w)
        if nan.any():  # an output never written (outputs from torch.empty are NaN-filled while grading) or 0/0
            first = tuple(int(i) for i in np.argwhere(nan)[0]) if w.ndim else ()
            raise AssertionError(f"{what}: NaN at index {first} ({int(nan.sum())} of {nan.size} elements), where a "
                                 f"number is expected: an element the kernel never wrote, or a 0/0")
        if bad.any():
            idx = np.unravel_index(np.argmax(np.where(bad, np.nan_to_num(err, nan=np.inf), -1)), w.shape)
            raise AssertionError(
                f"{what}: max |err| {np.nanmax(np.where(bad, err, 0)):.3g} at index {tuple(int(i) for i in idx)}, "
                f"tolerance {atol:g} + {rtol:g}*|expected| ({bad.sum()} of {bad.size} elements wrong)"
            )
        return
    bad = got != want
    if np.any(bad):
        first = tuple(int(i) for i in np.argwhere(bad)[0]) if want.ndim else ()
        raise AssertionError(f"{what}: {int(np.sum(bad))} of {want.size} elements differ, first at index {first}")
