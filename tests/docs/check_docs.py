#!/usr/bin/env python3
"""Keeps the documentation true to the repository (ctest: check_docs, label unit; no broker needed).

    tests/docs/check_docs.py [--root DIR] [--build DIR] [--binary NAME=PATH ...] [DOC ...]

DOC defaults to README.md, docs/*.md and deploy/README.md under --root (default: this checkout). For each
document it checks
  - paths: every repository path in backticks, in a code block or as a link target (e.g.
    `services/router/`, `deploy/local/up`) exists under --root; `<placeholder>` and `*` in a path match any
    name, and must match at least one. A bare source file name in backticks (`escalation_test.cc`) must exist
    somewhere in the repository;
  - commands: every command line of a shell code block (```sh) and every command in backticks whose first
    word is schakelctl or a service binary (intake, router, inbox, keys, ops) parses: each subcommand and
    each flag is in the built binary's --help, at the level it is given at (schakelctl's global flags before
    the subcommand). A flag given to one of the repository's scripts (`tests/run --no-fuzz`) must appear in
    that script. `schakel.v1.Service/Method` (grpcurl) and `Service.Method` name an rpc of proto/;
  - metrics: a `schakel_...` metric name in backticks appears in the sources of libs/, services/ or tools/;
  - links: every relative markdown link resolves to a file of the repository, and an #anchor to a heading of
    the document it points into;
  - code blocks say their language (sh for commands, text for the rest), so that no command block goes
    unchecked by being unmarked.
The binaries come from --binary NAME=PATH (as ctest passes them) or from --build DIR (schakelctl in
tools/schakelctl/, each service in services/<name>/). Prints "doc:line: problem" per problem and exits 1, or
one summary line and exits 0. tests/docs/check_docs_test.py shows that each kind of problem is found.
"""

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

SERVICES = ("intake", "router", "inbox", "keys", "ops")
BINARIES = ("schakelctl",) + SERVICES
DEFAULT_BINARY_PATHS = {"schakelctl": "tools/schakelctl/schakelctl",
                        **{s: f"services/{s}/{s}" for s in SERVICES}}
SHELL_LANGUAGES = {"sh", "bash", "shell", "console"}
# Source files a bare name may refer to (a name with a slash is a path and checked as one).
SOURCE_SUFFIXES = (".cc", ".h", ".proto", ".py", ".mjs")
# Top-level folders whose files are made, not kept: a path into them is no repository path.
NOT_IN_REPOSITORY = re.compile(r"^(build[\w-]*|\..*|node_modules)$")
# `<organisation id>`, `<org>`: a placeholder, in paths and command lines.
PLACEHOLDER = re.compile(r"<[A-Za-z][^<>()\n]*>")
SHELL_OPERATORS = {"|", "||", "&&", ";", "&", "(", ")", "{", "}"}
WRAPPERS = {"time", "sudo", "exec", "nice", "setsid", "env"}


class Help:
    """What one level of a CLI11 program accepts, read from its --help."""

    def __init__(self, text):
        self.options = {}      # "--name" -> takes a value
        self.subcommands = set()
        self.positionals = 0   # how many; -1: one of them takes any number
        section = None
        for line in text.splitlines():
            # "Options:", "Subcommands:", "Positionals:", or an option group's own heading ("TLS:").
            heading = re.fullmatch(r"(\S[^:]*):", line)
            if heading:
                name = heading.group(1)
                section = name if name in ("Subcommands", "Positionals") else "Options"
                continue
            if not re.match(r"  \S", line):
                continue  # a description's continuation, or no section's line
            if section == "Options":
                # "  -h,--help   desc", "  --kafka TEXT=...  desc", "  --all   desc", "  --tick-ms INT:INT in [..]"
                m = re.match(r"  ((?:-{1,2}[\w-]+)(?:,-{1,2}[\w-]+)*)( \S)?", line)
                if m:
                    for name in m.group(1).split(","):
                        self.options[name] = m.group(2) is not None
            elif section == "Subcommands":
                m = re.match(r"  ([\w-]+)", line)
                if m:
                    self.subcommands.add(m.group(1))
            elif section == "Positionals":
                m = re.match(r"  ([\w-]+) \S+( \.\.\.)?", line)
                if m and self.positionals >= 0:
                    self.positionals = -1 if m.group(2) else self.positionals + 1


class Program:
    """A built binary, its --help read per subcommand level as it is needed."""

    def __init__(self, name, path):
        self.name, self.path, self.levels = name, path, {}

    def help(self, level):
        if level not in self.levels:
            result = subprocess.run([str(self.path), *level, "--help"], capture_output=True, text=True,
                                    timeout=30)
            if result.returncode != 0:
                raise RuntimeError(f"{self.path} {' '.join(level)} --help exited {result.returncode}: "
                                   f"{result.stderr.strip()}")
            self.levels[level] = Help(result.stdout)
            if not self.levels[level].options:
                raise RuntimeError(f"{self.path} {' '.join(level)} --help lists no options (not CLI11's help?)")
        return self.levels[level]

    def check(self, words):
        """The first thing wrong with `words` (the arguments after the program's name), or None."""
        level, positionals, i = (), 0, 0
        while i < len(words):
            word, current = words[i], self.help(level)
            if word == "--":
                return None  # what follows is not for the program's flags
            if word.startswith("-") and len(word) > 1 and not re.fullmatch(r"-\d+", word):
                flag = word.split("=", 1)[0]
                if flag not in current.options:
                    where = f"{self.name} {' '.join(level)}".strip()
                    return f"`{where}` has no flag {flag} (see `{where} --help`)"
                if current.options[flag] and "=" not in word:
                    i += 1  # its value
            elif word in current.subcommands and positionals == 0:
                level, positionals = level + (word,), 0
            elif current.positionals == -1 or positionals < current.positionals:
                positionals += 1
            elif current.subcommands:
                where = f"{self.name} {' '.join(level)}".strip()
                return (f"`{where}` has no subcommand {word} (it has {', '.join(sorted(current.subcommands))})")
            else:
                where = f"{self.name} {' '.join(level)}".strip()
                return f"`{where}` takes no argument {word}"
            i += 1
        return None


class Checker:
    def __init__(self, root, programs):
        self.root = root
        self.programs = programs
        self.problems = []
        self.counts = dict(paths=0, commands=0, links=0, names=0)
        self.top = {p.name for p in root.iterdir() if not NOT_IN_REPOSITORY.match(p.name)}
        self.files_by_name = {}
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if not NOT_IN_REPOSITORY.match(d)]
            for name in files:
                self.files_by_name.setdefault(name, []).append(Path(folder) / name)
        self.rpcs = self.read_rpcs()
        self.sources = None  # the text of libs/, services/, tools/, read when a metric is first looked up
        self.anchors = {}

    def problem(self, doc, line, text):
        self.problems.append(f"{doc.relative_to(self.root)}:{line}: {text}")

    # ---- reading a document --------------------------------------------------------------------------------

    def check_doc(self, doc):
        """Walks the document once: code blocks, then each paragraph's inline code and links."""
        in_block, language, start = False, "", 0
        block_lines, paragraph, paragraph_start = [], [], 1
        for number, line in enumerate(doc.read_text().splitlines() + [""], 1):
            fence = re.match(r"\s*(```+|~~~+)\s*([\w+-]*)", line)
            if in_block:
                if fence:
                    in_block = False
                    self.check_block(doc, start, language, block_lines)
                else:
                    block_lines.append(line)
                continue
            if fence or not line.strip():
                self.check_paragraph(doc, paragraph_start, "\n".join(paragraph))
                paragraph, paragraph_start = [], number + 1
            if fence:
                in_block, language, start, block_lines = True, fence.group(2).lower(), number, []
                if not language:
                    self.problem(doc, number, "a code block without a language: ```sh for commands (they are "
                                              "checked), ```text for anything else")
            elif line.strip():
                paragraph.append(line)
        if in_block:
            self.problem(doc, start, "a code block that is never closed")

    def check_paragraph(self, doc, start, text):
        """Inline code and links may run over several lines of a paragraph, never beyond it."""
        def line_of(offset):
            return start + text.count("\n", 0, offset)

        for m in re.finditer(r"(`+)(.+?)\1", text, re.S):
            self.check_inline(doc, line_of(m.start()), " ".join(m.group(2).split()))
        prose = re.sub(r"(`+)(.+?)\1", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
        for m in re.finditer(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", prose):
            self.check_link(doc, line_of(m.start()), m.group(1))

    def check_block(self, doc, start, language, lines):
        for offset, line in enumerate(lines, 1):
            for word in re.split(r"[\s\"'=(]+", line):
                self.check_path_word(doc, start + offset, word)
                self.check_names(doc, start + offset, word)
        if language not in SHELL_LANGUAGES:
            return
        # Lines continued with a backslash are one command line, reported at their first line.
        command, first = "", 0
        for offset, line in enumerate(lines, 1):
            if not command:
                first = start + offset
            if line.rstrip().endswith("\\"):
                command += line.rstrip()[:-1] + " "
                continue
            self.check_command_line(doc, first, command + line, in_block=True)
            command = ""

    def check_inline(self, doc, number, span):
        words = span.split()
        for word in words:
            self.check_path_word(doc, number, word, bare_names=True)
            self.check_names(doc, number, word)
        if words and (words[0] == "schakelctl" or words[0] in SERVICES and len(words) > 1
                      and words[1].startswith("-") or self.is_script(words[0])):
            self.check_command_line(doc, number, span, in_block=False)

    # ---- paths -----------------------------------------------------------------------------------------------

    def check_path_word(self, doc, number, word, bare_names=False):
        word = PLACEHOLDER.sub("*", word)
        for m in re.finditer(r"(?<![\w./~$*-])([\w.*-]+)/[\w./*@+-]*", word):
            path = m.group(0).rstrip(".:,;")
            if m.group(1) in self.top:
                self.check_path(doc, number, path)
        if bare_names and "/" not in word:
            name = word.rstrip(".:,;)")
            if name.endswith(SOURCE_SUFFIXES) and re.fullmatch(r"[\w.-]+", name):
                self.counts["paths"] += 1
                if name not in self.files_by_name:
                    self.problem(doc, number, f"no file {name} in the repository")

    def check_path(self, doc, number, path):
        self.counts["paths"] += 1
        if "*" in path:
            if not list(self.root.glob(path.rstrip("/"))):
                self.problem(doc, number, f"nothing in the repository matches {path}")
        elif not (self.root / path).exists():
            self.problem(doc, number, f"path {path} does not exist")
        elif path.endswith("/") and not (self.root / path).is_dir():
            self.problem(doc, number, f"{path} is not a folder")

    # ---- commands ---------------------------------------------------------------------------------------------

    def is_script(self, word):
        path = self.root / word
        return "/" in word and word.split("/")[0] in self.top and path.is_file() and os.access(path, os.X_OK)

    def check_command_line(self, doc, number, line, in_block):
        line = PLACEHOLDER.sub("PLACEHOLDER", line.replace("…", "..."))
        try:
            words = shlex.split(line, comments=True)
        except ValueError as e:
            if in_block:
                self.problem(doc, number, f"a command line the shell cannot read ({e})")
            return
        command = []
        for word in words + [";"]:
            if word in SHELL_OPERATORS:
                self.check_command(doc, number, command)
                command = []
            else:
                command.append(word)

    def check_command(self, doc, number, words):
        # Redirections: "> file" (both words go), ">file" and "2>&1".
        kept, skip = [], False
        for word in words:
            if skip:
                skip = False
            elif re.fullmatch(r"\d*(>>?|<)", word) or word == "&>":
                skip = True
            elif not re.fullmatch(r"\d*(>>?|<)&?\S*", word):
                kept.append(word)
        words = kept
        while words and (re.fullmatch(r"\w+=.*", words[0]) or words[0] in WRAPPERS):
            words = words[1:]
        if not words:
            return
        head = words[0]
        name = Path(head).name
        if name in self.programs and (head == name or "/" in head):
            self.counts["commands"] += 1
            problem = self.programs[name].check(words[1:])
            if problem:
                self.problem(doc, number, problem)
        elif self.is_script(head):
            self.counts["commands"] += 1
            text = (self.root / head).read_text(errors="replace")
            for word in words[1:]:
                if word == "--":
                    break
                flag = word.split("=", 1)[0]
                if re.fullmatch(r"--[\w-]+", flag) and not re.search(re.escape(flag) + r"(?![\w-])", text):
                    self.problem(doc, number, f"{head} knows no flag {flag} (it is nowhere in {head})")

    # ---- names: rpcs and metrics ----------------------------------------------------------------------------

    def read_rpcs(self):
        rpcs = set()
        for proto in (self.root / "proto").rglob("*.proto") if (self.root / "proto").is_dir() else []:
            package, service = "", ""
            for line in proto.read_text().splitlines():
                if m := re.match(r"package ([\w.]+);", line):
                    package = m.group(1)
                elif m := re.match(r"service (\w+)", line):
                    service = m.group(1)
                elif m := re.match(r"\s+rpc (\w+)", line):
                    rpcs.add((package, service, m.group(1)))
        return rpcs

    def check_names(self, doc, number, word):
        word = word.strip(".,;:()")
        if m := re.fullmatch(r"(?:([\w.]+)\.)?(\w+Service)[./](\w+)", word):
            package, service, rpc = m.groups()
            if package and package.startswith("grpc."):
                return  # gRPC's own services (health, reflection, channelz)
            self.counts["names"] += 1
            if not any(s == service and r == rpc and (not package or p == package) for p, s, r in self.rpcs):
                self.problem(doc, number, f"no rpc {rpc} in service {service} in proto/")
        elif re.fullmatch(r"schakel_[a-z][a-z_]*[a-z]", word):
            self.counts["names"] += 1
            if self.sources is None:
                self.sources = "\n".join(
                    p.read_text(errors="replace") for top in ("libs", "services", "tools")
                    if (self.root / top).is_dir() for p in (self.root / top).rglob("*")
                    if p.suffix in (".cc", ".h") and not p.name.endswith("_test.cc"))
            if not re.search(r"\b" + word + r"\b", self.sources):
                self.problem(doc, number, f"no metric {word} in the sources of libs/, services/ or tools/")

    # ---- links ---------------------------------------------------------------------------------------------

    def check_link(self, doc, number, target):
        if re.match(r"[a-z][\w+.-]*:", target):
            return  # https:, mailto:: not the repository's
        self.counts["links"] += 1
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        try:
            file.relative_to(self.root)
        except ValueError:
            self.problem(doc, number, f"link {target} leads out of the repository")
            return
        if not file.exists():
            self.problem(doc, number, f"link {target}: {file.relative_to(self.root)} does not exist")
        elif anchor and file.suffix == ".md" and anchor not in self.headings(file):
            self.problem(doc, number, f"link {target}: {file.relative_to(self.root)} has no heading #{anchor}")

    def headings(self, file):
        """GitHub's anchors of a markdown file's headings."""
        if file not in self.anchors:
            seen, anchors, in_block = {}, set(), False
            for line in file.read_text().splitlines():
                if re.match(r"\s*(```|~~~)", line):
                    in_block = not in_block
                m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
                if m and not in_block:
                    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", m.group(1)).lower()
                    slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
                    count = seen.get(slug, 0)
                    seen[slug] = count + 1
                    anchors.add(slug if count == 0 else f"{slug}-{count}")
            self.anchors[file] = anchors
        return self.anchors[file]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2])
    parser.add_argument("--build", type=Path, help="the build folder: the binaries at their usual places")
    parser.add_argument("--binary", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("docs", nargs="*", type=Path)
    args = parser.parse_args()
    root = args.root.resolve()

    paths = {}
    if args.build:
        paths = {name: args.build / rel for name, rel in DEFAULT_BINARY_PATHS.items()}
    for given in args.binary:
        name, _, path = given.partition("=")
        paths[name] = Path(path)
    missing = [n for n in BINARIES if n not in paths or not os.access(paths[n], os.X_OK)]
    if missing:
        print(f"check_docs: no binary for {', '.join(missing)} (build them, and give --build or --binary)")
        return 1

    docs = [d if d.is_absolute() else root / d for d in args.docs] or [
        root / "README.md", *sorted((root / "docs").glob("*.md")), root / "deploy" / "README.md"]
    checker = Checker(root, {n: Program(n, p) for n, p in paths.items()})
    for doc in docs:
        if not doc.exists():
            print(f"check_docs: {doc} does not exist")
            return 1
        checker.check_doc(doc.resolve())
    if checker.problems:
        print("\n".join(dict.fromkeys(checker.problems)))
        return 1
    c = checker.counts
    print(f"{len(docs)} documents: {c['paths']} paths exist, {c['commands']} command lines parse, {c['links']} links "
          f"resolve, {c['names']} rpcs and metrics exist")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        print(f"check_docs: {e}")
        sys.exit(1)
