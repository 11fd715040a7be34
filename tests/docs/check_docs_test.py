#!/usr/bin/env python3
"""The docs checker finds what it promises to find (ctest: check_docs_selftest, label unit).

    tests/docs/check_docs_test.py --build DIR | --binary NAME=PATH ...   (as check_docs.py takes them)

Runs tests/docs/check_docs.py on small repositories made in a temporary folder, with the real binaries: a
document in which everything is right passes, and for each kind of mistake a document holding only that one
fails, naming the document, the line and what is wrong. So a checker that reads nothing cannot pass.
"""

import os
import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

CHECKER = Path(__file__).resolve().parent / "check_docs.py"
BINARY_ARGS = []  # from the command line

# Everything here is right; each case below adds one mistake.
GOOD = """\
    # Guide

    ## Commands

    Run `schakelctl queues --json`, `schakelctl --pki DIR audit
    verify --audit-keys DIR` and `router --instance 2 --listen 127.0.0.1:50053`; `tools/run --fast` and
    `schakelctl dlq redrive DEAD-LETTER… | --all`. `KeyService.ClientKey` and `schakel_good_total` exist, as
    do `libs/m/`, `libs/<name>/thing.cc` and `thing.cc`. See [above](#commands), [the other](other.md#other-doc)
    and ![a picture](pic.png).

    | table | `libs/m/thing.cc` |
    |---|---|

    ```sh
    schakelctl --kafka-config admin.properties access apply --network network.yaml --kafka <bootstrap> \\
      --exact
    schakelctl audit export > audit.jsonl   # a comment: --no-such-flag
    grpcurl -d "$(cat libs/m/thing.cc)" 127.0.0.1:50051 schakel.v1.KeyService/ClientKey
    ```

    ```text
    libs/m/   a layout, not commands: schakelctl nonsense
    ```
"""

# (what is wrong, a line to add to GOOD, what the report must say)
MISTAKES = [
    ("a path that is not there", "See `libs/m/gone.cc`.", "path libs/m/gone.cc does not exist"),
    ("a pattern nothing matches", "See `libs/<name>/gone.h`.", "nothing in the repository matches libs/*/gone.h"),
    ("a bare file name that is nowhere", "See `gone_test.cc`.", "no file gone_test.cc"),
    ("a path in a code block", "```sh\ncat libs/m/gone.cc\n```", "path libs/m/gone.cc does not exist"),
    ("a subcommand schakelctl lacks", "Run `schakelctl audit verifyy`.", "has no subcommand verifyy"),
    ("a flag schakelctl lacks", "Run `schakelctl queues --jsonn`.", "`schakelctl queues` has no flag --jsonn"),
    ("a global flag after the subcommand", "Run `schakelctl queues --pki DIR`.",
     "`schakelctl queues` has no flag --pki"),
    ("an argument where none is taken", "Run `schakelctl queues now`.", "`schakelctl queues` takes no argument now"),
    ("a service's flag that is not there", "Run `router --instanse 2`.", "`router` has no flag --instanse"),
    ("a command continued over lines", "```sh\nschakelctl access \\\n  applyy --exact\n```",
     "`schakelctl access` has no subcommand applyy"),
    ("a command after a pipe", "```sh\necho | schakelctl topics createe\n```", "has no subcommand createe"),
    ("a script's flag that is not there", "Run `tools/run --slow`.", "tools/run knows no flag --slow"),
    ("a link to no file", "See [it](missing.md).", "link missing.md: docs/missing.md does not exist"),
    ("a link to no heading", "See [it](other.md#nowhere).", "other.md has no heading #nowhere"),
    ("a link out of the repository", "See [it](../../elsewhere.md).", "leads out of the repository"),
    ("an rpc that is not in proto/", "Call `KeyService.EraseEverything`.", "no rpc EraseEverything in service "
                                                                             "KeyService"),
    ("a metric nobody exports", "Watch `schakel_gone_total`.", "no metric schakel_gone_total"),
    ("a code block without a language", "```\nschakelctl nonsense\n```", "a code block without a language"),
]


def make_repository(folder, doc):
    files = {
        "README.md": "# Readme\n",
        "docs/other.md": "# Other doc\n",
        "docs/pic.png": "",
        "docs/guide.md": textwrap.dedent(GOOD) + "\n" + doc + "\n",
        "libs/m/thing.cc": 'const char* kName = "schakel_good_total";\n',
        "proto/x/v1/keys.proto": "package schakel.v1;\nservice KeyService {\n  rpc ClientKey(A) returns (B);\n}\n",
        "tools/run": "#!/bin/sh\n# tools/run [--fast]\n",
    }
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    (folder / "tools/run").chmod(0o755)


def check(doc, docs=("docs/guide.md",)):
    with tempfile.TemporaryDirectory() as folder:
        make_repository(Path(folder), doc)
        result = subprocess.run([sys.executable, str(CHECKER), "--root", folder, *BINARY_ARGS, *docs],
                                capture_output=True, text=True, timeout=120)
        return result.returncode, result.stdout + result.stderr


class CheckDocsTest(unittest.TestCase):
    def test_a_right_document_passes(self):
        status, output = check("")
        self.assertEqual(status, 0, output)
        # 7 paths, 7 command lines, 3 links, 3 names: it read what is there.
        self.assertRegex(output, r"1 documents: 7 paths exist, 7 command lines parse, 3 links resolve, "
                                 r"3 rpcs and metrics exist")

    def test_each_mistake_fails_naming_the_line(self):
        good_lines = len(textwrap.dedent(GOOD).splitlines())
        for what, doc, expected in MISTAKES:
            with self.subTest(what):
                status, output = check(doc)
                self.assertEqual(status, 1, output)
                # The mistake is on the first line after GOOD and its blank line, or in a code block there
                # on the line after the fence (a block without a language: on the fence).
                in_block = doc.startswith("```") and "language" not in what
                self.assertIn(f"docs/guide.md:{good_lines + 2 + in_block}: ", output)
                self.assertIn(expected, output)
                self.assertEqual(len(output.strip().splitlines()), 1, output)  # only the mistake

    def test_a_missing_binary_fails(self):
        with tempfile.TemporaryDirectory() as folder:
            make_repository(Path(folder), "")
            result = subprocess.run([sys.executable, str(CHECKER), "--root", folder, "--binary",
                                     f"schakelctl={folder}/no-such-schakelctl"], capture_output=True, text=True,
                                    timeout=60)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn("no binary for schakelctl, intake, router, inbox, keys, ops", result.stdout)

    def test_a_missing_document_fails(self):
        status, output = check("", docs=("docs/nothing.md",))
        self.assertEqual(status, 1, output)
        self.assertIn("nothing.md does not exist", output)


if __name__ == "__main__":
    BINARY_ARGS = [a for a in sys.argv[1:]]
    # --build DIR becomes an absolute path: the checker runs from another folder.
    for i, arg in enumerate(BINARY_ARGS[:-1]):
        if arg == "--build":
            BINARY_ARGS[i + 1] = os.path.abspath(BINARY_ARGS[i + 1])
    unittest.main(argv=[sys.argv[0]], verbosity=2)
