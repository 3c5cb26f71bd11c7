"""The student copies are not chapters to test: they stop at the first exercise stub by design.

``make test`` runs ``pytest tests chapters --nbval-lax``; without this file nbval would collect (and fail on) every
notebook here. ``tests/test_student.py`` checks the copies instead: current with the chapters, no solution code,
every stub raising ``NotImplementedError`` with its hint.
"""

collect_ignore_glob = ["*.ipynb"]
