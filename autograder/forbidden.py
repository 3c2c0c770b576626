"""Refuse submissions that call what an exercise forbids (``sorted`` in a merge, say).

The check reads the source of the learner's function and of every function or Triton kernel it
reaches through global names defined in the same module (a notebook's ``__main__``), so a helper
or a ``@triton.jit`` kernel cannot hide a call.
"""
import ast
import inspect
import textwrap
import types


def _function_of(obj):
    """The Python function behind obj: itself, or a Triton kernel's (JIT or interpreted) .fn."""
    if isinstance(obj, types.FunctionType):
        return obj
    inner = getattr(obj, "fn", None)
    if isinstance(inner, types.FunctionType) and type(obj).__module__.startswith("triton"):
        return inner
    return None


def _global_names(code: types.CodeType):
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _global_names(const)


def _roots(obj) -> list[types.FunctionType]:
    """The functions to start from: obj's function, or every method a class defines."""
    if isinstance(obj, type):
        found = [_function_of(v.__func__ if isinstance(v, (staticmethod, classmethod)) else v) for v in vars(obj).values()]
        return [f for f in found if f is not None]
    root = _function_of(obj)
    if root is None:
        raise TypeError(f"expected a function or a class, got {type(obj).__name__}")
    return [root]


def reachable(fn) -> list[types.FunctionType]:
    """fn (or a class's methods) and the functions/kernels of its module that it reaches through
    global names."""
    roots = _roots(fn)
    module = roots[0].__module__ if roots else None
    seen, todo = [], list(roots)
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.append(f)
        for name in _global_names(f.__code__):
            g = _function_of(f.__globals__.get(name))
            if g is not None and g.__module__ == module and g not in seen:
                todo.append(g)
            elif isinstance(f.__globals__.get(name), type) and f.__globals__[name].__module__ == module:
                todo.extend(r for r in _roots(f.__globals__[name]) if r not in seen)
    return seen


def _dotted(node) -> str | None:
    """`torch.func.grad` for the expression torch.func.grad; None for anything but names and attributes."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def uses(source: str, names: set[str]) -> list[tuple[str, int]]:
    """(name, line) for every use of a forbidden name in source: a call, attribute or import.
    An entry written ".name" matches only an attribute (`F.name`), so an exercise can refuse
    torch's function while the learner calls their own function of the same name. An entry with a
    dot inside ("torch.func") is a module: refused as an attribute path, an import or a
    `from torch import func`. "@" refuses the matrix-multiply operator (`a @ b`, `a @= b`), which
    reaches torch.matmul without naming it."""
    attributes = {n.lstrip(".") for n in names if "." not in n.lstrip(".")}
    bare = {n for n in names if not n.startswith(".") and "." not in n and n != "@"}
    modules = {n for n in names if "." in n.lstrip(".") and not n.startswith(".")}
    found = []
    for node in ast.walk(ast.parse(textwrap.dedent(source))):
        if "@" in names and isinstance(node, (ast.BinOp, ast.AugAssign)) and isinstance(node.op, ast.MatMult):
            found.append(("@", node.lineno))
        if isinstance(node, ast.Name) and node.id in bare:
            found.append((node.id, node.lineno))
        elif isinstance(node, ast.Attribute):
            path = _dotted(node)
            if node.attr in attributes:
                found.append((node.attr, node.lineno))
            elif path and any(path == m or path.startswith(m + ".") for m in modules):
                found.append((path, node.lineno))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            imported = [a.name for a in node.names]
            if isinstance(node, ast.ImportFrom) and node.module:
                imported = [node.module] + [f"{node.module}.{a}" for a in imported]
            for m in imported:
                if m.split(".")[0] in bare or m.split(".")[-1] in bare or any(
                        m == mod or m.startswith(mod + ".") for mod in modules):
                    found.append((m, node.lineno))
                    break
    return found


def check(fn, names: set[str], why: str) -> None:
    """Raise AssertionError if fn, or code it reaches, uses one of `names`."""
    if not names:
        return
    for f in reachable(fn):
        try:
            source = inspect.getsource(f)
        except (OSError, TypeError):
            raise AssertionError(f"cannot read the source of {f.__name__}; define it in the notebook") from None
        for name, line in uses(source, names):
            raise AssertionError(
                f"{f.__name__} uses `{name}` (line {line} of its definition), which this exercise "
                f"forbids: {why}"
            )
