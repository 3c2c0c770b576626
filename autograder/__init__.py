"""The course's grader: references, checks, the `verify` entry point and the CLI."""


def verify(chapter: str, exercise: str, fn) -> None:
    """Grade `fn` as exercise `exercise` of `chapter`; raises AssertionError on a wrong answer."""
    from autograder.verify import verify as _verify

    _verify(chapter, exercise, fn)
