#!/usr/bin/env python3
"""Runs one module of the HTTP integration tests against apps/hello.

    python3 tests/http/run.py test_protocol --hello build/x/apps/hello [-k pattern]

After unittest's own report it prints a doctest-style summary,
    [doctest] test cases: N | P passed | F failed | S skipped
counting each test method once (a method with a failing subtest is one
failure), so scripts/count-tests sums these suites with the C++ ones.
Exits 1 if anything failed or errored, or if nothing ran.
"""
import argparse
import os
import sys
import unittest
from pathlib import Path


class CountingResult(unittest.TextTestResult):
    """Remembers which test methods failed, subtests included."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ran_ids = set()
        self.bad_ids = set()
        self.skipped_ids = set()

    def startTest(self, test):
        super().startTest(test)
        self.ran_ids.add(test.id())

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.bad_ids.add(test.id())

    def addError(self, test, err):
        super().addError(test, err)
        # setUpClass/tearDownClass errors arrive as a pseudo-test: count it.
        self.bad_ids.add(getattr(test, "id", lambda: str(test))())

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self.bad_ids.add(test.id())

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.skipped_ids.add(test.id())

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.bad_ids.add(test.id())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("module", help="e.g. test_protocol")
    ap.add_argument("--hello", required=True, help="path of the apps/hello executable")
    ap.add_argument("-k", dest="patterns", action="append", help="only tests matching")
    args = ap.parse_args()

    os.environ["SPINDLE_HELLO"] = str(Path(args.hello).resolve())
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))

    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = [p if "*" in p else f"*{p}*" for p in args.patterns]
    suite = loader.loadTestsFromName(args.module)
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2,
                                     resultclass=CountingResult)
    result = runner.run(suite)

    skipped = len(result.skipped_ids - result.bad_ids)
    failed = len(result.bad_ids)
    cases = len(result.ran_ids | result.bad_ids)
    passed = cases - failed - skipped
    print(f"[doctest] test cases: {cases} | {passed} passed | {failed} failed | "
          f"{skipped} skipped", flush=True)
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
