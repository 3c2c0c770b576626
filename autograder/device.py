"""The one place that decides where code runs.

Import this module before `triton`: when CUDA is absent it sets ``TRITON_INTERPRET=1`` so that
Triton kernels run in Triton's NumPy interpreter on the CPU (slow, but exact enough to grade).
"""
import os
import sys

import torch

CUDA = torch.cuda.is_available()
if not CUDA:
    if "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError(
            "triton was imported before autograder.device on a machine without CUDA, so Triton "
            "kernels would try to compile for a GPU. Import autograder.device first, or set "
            "TRITON_INTERPRET=1 before starting Python."
        )
    os.environ["TRITON_INTERPRET"] = "1"
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # triton 3.9 warns when unset; 1 is what it and the GPU machines do

DEVICE = torch.device("cuda" if CUDA else "cpu")


def _nested_calls_restore_patches() -> None:
    """Triton 3.9's interpreter patches triton.language for each @triton.jit function a kernel
    calls (tl.sum included) and never restores those patches, so after the first such kernel
    triton.language stays in interpreter mode for the whole process and nothing can be compiled
    for a GPU any more (autograder.watch compiles every graded kernel). Restore them as
    GridExecutor does for the kernel itself; nested patches restore to the outer ones."""
    from triton.runtime import interpreter

    if getattr(interpreter.InterpretedFunction.__call__, "restores_patches", False):
        return

    def __call__(self, *args, **kwargs):
        scope = interpreter._patch_lang(self.fn)
        try:
            return self.rewrite()(*args, **kwargs)
        except Exception as e:
            raise interpreter.InterpreterError(repr(e)) from e
        finally:
            scope.restore()

    __call__.restores_patches = True
    interpreter.InterpretedFunction.__call__ = __call__


if not CUDA:
    _nested_calls_restore_patches()


def describe() -> str:
    """One line naming the device, for benchmark records and notebook headers."""
    if CUDA:
        return torch.cuda.get_device_name(0)
    return "CPU (Triton interpreter)"
