#!/usr/bin/env python3
"""The thread-safety checker finds a guarded member read without its mutex, and passes a correct one.

    tests/thread_safety/check_test.py [--clang clang++-14]
"""
import json
import os
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
clang = sys.argv[sys.argv.index("--clang") + 1] if "--clang" in sys.argv else "clang++-14"


def run_on(fixture):
    with tempfile.TemporaryDirectory() as build:
        source = os.path.join(here, "fixtures", fixture)
        entry = {"directory": build, "file": source,
                 "command": f"/usr/bin/c++ -std=c++20 -Wshadow=local -o x.o -c {source}"}
        with open(os.path.join(build, "compile_commands.json"), "w", encoding="utf-8") as f:
            json.dump([entry], f)
        return subprocess.run([sys.executable, os.path.join(here, "check.py"), build, "--clang", clang],
                              capture_output=True, text=True)


failed = False
bad = run_on("unguarded.cc")
if bad.returncode != 1 or "requires holding mutex 'mu_'" not in bad.stdout:
    print(f"check_test: unguarded.cc was not reported (exit {bad.returncode}):\n{bad.stdout}{bad.stderr}")
    failed = True
good = run_on("guarded.cc")
if good.returncode != 0 or "1 files checked" not in good.stdout:
    print(f"check_test: guarded.cc was not passed (exit {good.returncode}):\n{good.stdout}{good.stderr}")
    failed = True
if not failed:
    print("check_test: the checker reports an unguarded read and passes a guarded one")
sys.exit(1 if failed else 0)
