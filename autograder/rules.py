"""The rules a Triton exercise states, judged on what `autograder.watch` recorded (in the grader's
process, from the run's outputs: NumPy arrays only).

Every Triton exercise's prompt lists them under "What the grader enforces"; a chapter's check calls
`kernel_rules` with the ones it states. Each raises an AssertionError whose message names the
missing step; `see` is the page section that teaches it ("section 6").
"""
import numpy as np

NOTEBOOK = "__main__"  # the module a learner's notebook defines its kernels in
SOLUTIONS = "solution_"  # gpu-check imports the instructor's solutions as solution_<module> (gpucheck.load_solution)


def _own(module: str) -> bool:
    return module == NOTEBOOK or module.startswith(SOLUTIONS)


def _see(see: str) -> str:
    return f" (see {see})" if see else ""


def constexprs(got, i: int) -> dict[str, str]:
    """The constexprs of launch i, as strings: {"BLOCK_N": "64"}."""
    text = str(got["constexprs"][i])
    return dict(part.split("=", 1) for part in text.split(", ") if "=" in part)


def kernel_rules(got, *, kernels=None, launches=None, host: bool = True, host_may=(),
                 block_limits=None, precision=None, see: str = "") -> None:
    """The work happens in the learner's own kernel, launched as the prompt says.

    kernels: names the launches may run (None: any kernel the notebook defines);
    launches: how many launches there must be (an int), or a (low, high) range;
    host: no torch op outside the launches computes anything (allocate, view, copy, launch only);
        `host_may` lists ops the exercise allows besides;
    block_limits: {constexpr name: largest value} for every launch that passes it;
    precision: "ieee" to require full float32 products in every float32 tl.dot.
    Compiling for sm_90 is always required: a kernel the GPU compiler rejects loses its points
    even though the interpreter ran it."""
    errors = [str(e) for e in np.atleast_1d(got.get("compile_errors", np.array([], str)))]
    if errors:
        raise AssertionError(errors[0] + ": the interpreter runs code the compiler refuses; fix it so it compiles")
    names = [str(n) for n in np.atleast_1d(got["kernels"])]
    modules = [str(m) for m in np.atleast_1d(got["kernel_modules"])]
    for name, module in zip(names, modules):
        if not _own(module):
            raise AssertionError(f"launched {name} from {module}: the kernel must be your own @triton.jit function, "
                                 f"defined in the notebook")
    if kernels is not None:
        others = sorted(set(names) - set(kernels))
        if others:
            raise AssertionError(f"launched {', '.join(others)}: this exercise's work is done by "
                                 f"{' and '.join(sorted(kernels))}{_see(see)}")
    n = int(got["launches"])
    if launches is not None:
        low, high = launches if isinstance(launches, tuple) else (launches, launches)
        if not low <= n <= high:
            want = f"exactly {low}" if low == high else f"{low} to {high}"
            raise AssertionError(f"launched {n} kernel(s), {want} expected{_see(see)}")
    if host:
        ops = [str(o) for o in np.atleast_1d(got["host_ops"]) if str(o) not in set(host_may)]
        if ops:
            raise AssertionError(f"computed on the host with torch ({', '.join(ops[:6])}) outside your kernel: the host "
                                 f"side may allocate, view, copy and launch, and the kernel does the work{_see(see)}")
    for i in range(len(names)):
        for name, limit in (block_limits or {}).items():
            value = constexprs(got, i).get(name)
            if value is not None and value.lstrip("-").isdigit() and int(value) > limit:
                raise AssertionError(f"launched {names[i]} with {name} = {value}: blocks of at most {limit}, so that "
                                     f"the kernel loops over the blocks{_see(see)}")
    if precision == "ieee":
        tf32 = [str(d) for d in np.atleast_1d(got["dot_precisions"]) if "fp32 x fp32" in str(d) and "ieee" not in str(d)]
        if tf32:
            raise AssertionError(f"a float32 tl.dot runs as {tf32[0].split()[-1]}: pass input_precision=\"ieee\" for full "
                                 f"float32 products (the interpreter computes every dot exactly; a GPU rounds float32 "
                                 f"inputs to TF32 by default){_see(see)}")
