"""Judges with known misbehaviour, run inside real grader worker processes by the pool tests."""

import os


def misbehaving_judge(ref: str, ans: str) -> bool:
    """Spin forever on "spin", die on "die", raise on "raise", else compare strings."""
    if ans == "spin":
        while True:
            pass
    if ans == "die":
        os._exit(3)
    if ans == "raise":
        raise RuntimeError("judge failed on purpose")
    return ref == ans
