#!/usr/bin/env python3
"""Clang's thread-safety analysis over every source file of the build that uses a guarded member.

GCC (the build tests/run makes) does not check `ABSL_GUARDED_BY` and its friends; clang does, with
-Wthread-safety. Rather than a second full build, this runs clang in syntax-only mode with each file's own
flags from the build's compile_commands.json, on the files that can hold a thread-safety mistake: those that
mention a thread-safety annotation themselves or include one of our headers that does.

    tests/thread_safety/check.py BUILD_DIR [--clang clang++-14] [--jobs N] [--only FILE...]

Prints one line per file checked with a finding (clang's own diagnostics follow) and exits 1 when any file
has one; prints a summary line and exits 0 otherwise.
"""
import argparse
import concurrent.futures
import json
import os
import re
import shlex
import subprocess
import sys

ANNOTATION = re.compile(r"\bABSL_(GUARDED_BY|PT_GUARDED_BY|EXCLUSIVE_LOCKS_REQUIRED|SHARED_LOCKS_REQUIRED|"
                        r"LOCKS_EXCLUDED|LOCK_RETURNED|ACQUIRED_AFTER|ACQUIRED_BEFORE)\b")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
# GCC-only flags in our compile commands that clang does not know.
GCC_ONLY = ("-Wshadow=local", "-fno-semantic-interposition")


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def uses_annotations(path, root, seen):
    """Whether `path`, or a header of ours it includes (transitively), carries an annotation."""
    if path in seen:
        return seen[path]
    seen[path] = False
    text = read(path)
    found = bool(ANNOTATION.search(text))
    if not found:
        for include in INCLUDE.findall(text):
            candidate = os.path.join(root, include)
            if os.path.isfile(candidate) and uses_annotations(candidate, root, seen):
                found = True
                break
    seen[path] = found
    return found


def clang_command(entry, clang):
    args = entry.get("arguments") or shlex.split(entry["command"])
    out = [clang]
    skip = False
    for arg in args[1:]:
        if skip:
            skip = False
            continue
        if arg in ("-o", "-MF", "-MT", "-MQ"):
            skip = True
            continue
        if arg in ("-c", "-MD", "-MMD") or arg in GCC_ONLY or arg == entry["file"]:
            continue
        out.append(arg)
    # Only the analysis is asked of clang here: GCC polices every other warning in the real build.
    out += ["-fsyntax-only", "-Wno-everything", "-Wthread-safety", "-Wthread-safety-beta",
            "-Werror=thread-safety", "-Werror=thread-safety-beta", entry["file"]]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_dir")
    parser.add_argument("--clang", default="clang++-14")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--root", default=os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..")))
    parser.add_argument("--only", nargs="*", help="check these files (from compile_commands.json) only")
    options = parser.parse_args()

    database = os.path.join(options.build_dir, "compile_commands.json")
    try:
        with open(database, encoding="utf-8") as f:
            entries = json.load(f)
    except OSError as e:
        print(f"thread_safety: cannot read {database}: {e.strerror} "
              "(configure with CMAKE_EXPORT_COMPILE_COMMANDS=ON)", file=sys.stderr)
        return 2
    root = os.path.realpath(options.root)
    seen = {}
    chosen = []
    for entry in entries:
        path = os.path.realpath(os.path.join(entry.get("directory", ""), entry["file"]))
        if not path.startswith(root + os.sep) or os.sep + "proto" + os.sep in path[len(root):]:
            continue  # generated code and anything outside the repository
        if options.only is not None:
            if not any(os.path.realpath(o) == path for o in options.only):
                continue
        elif not uses_annotations(path, root, seen):
            continue
        chosen.append(entry)
    if not chosen:
        print("thread_safety: no source file to check: is the build configured, and are the mutexes annotated?",
              file=sys.stderr)
        return 2

    def check(entry):
        result = subprocess.run(clang_command(entry, options.clang), cwd=entry.get("directory"),
                                capture_output=True, text=True)
        return entry["file"], result.returncode, result.stderr

    failures = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=options.jobs) as pool:
        for path, code, stderr in pool.map(check, chosen):
            if code != 0:
                failures += 1
                print(f"thread_safety: {os.path.relpath(path, root)}:")
                print(stderr.rstrip())
    if failures:
        print(f"thread_safety: {failures} of {len(chosen)} files have findings", file=sys.stderr)
        return 1
    print(f"thread_safety: {len(chosen)} files checked with clang -Wthread-safety, no findings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
