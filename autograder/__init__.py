"""The course's grader: references, checks, the `verify` entry point and the CLI."""
from autograder.verifier import verify

__all__ = ["verify"]
