"""The benchmark: ``.venv/bin/python -m bench`` (see ``--help`` and the README's Performance
section). Nothing here is imported by the app or by the test suite's timing: the suite asserts
no speed."""
