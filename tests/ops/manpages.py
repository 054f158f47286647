#!/usr/bin/env python3
"""manpages.py MANPAGE BINARY: the man page made from docs/ (scripts/md2man.py) lists
exactly the options, and commands, that `BINARY --help` prints; and man(1) renders it
without a warning."""
import os
import re
import subprocess
import sys


def help_options(text):
    opts = set()
    for ln in text.splitlines():
        if re.match(r"^\s+--", ln):
            opts |= set(re.findall(r"(?<![\w-])--([a-z][a-z-]*)", ln))
    return opts


def help_commands(text):
    cmds, on = set(), False
    for ln in text.splitlines():
        if ln.strip() == "commands:":
            on = True
        elif on and re.match(r"^  [a-z]", ln):
            cmds.add(ln.split()[0])
        elif on and ln.strip() and not ln.startswith("  "):
            on = False
    return cmds


def man_sections(roff):
    sect, out = None, {}
    for ln in roff.splitlines():
        if ln.startswith(".SH "):
            sect = ln[4:].strip().strip('"')
            out[sect] = []
        elif sect:
            out[sect].append(ln)
    return out


def main():
    page, binary = sys.argv[1], sys.argv[2]
    name = os.path.basename(binary)
    with open(page, encoding="utf-8") as f:
        roff = f.read()
    sections = man_sections(roff)
    problems = []
    lines = sections.get("OPTIONS", [])
    man_opts = set()
    for i, ln in enumerate(lines):
        if ln == ".TP" and i + 1 < len(lines):
            term = re.sub(r"\\f[BIRP]", "", lines[i + 1]).replace("\\-", "-")
            man_opts |= set(re.findall(r"(?<![\w-])--([a-z][a-z-]*)", term))
    helptext = subprocess.run([binary, "--help"], capture_output=True, text=True, check=True).stdout
    opts = help_options(helptext)
    if not opts:
        problems.append("no options found in `%s --help`" % name)
    for o in sorted(opts - man_opts):
        problems.append("--%s is in `%s --help` but not in the man page's OPTIONS" % (o, name))
    for o in sorted(man_opts - opts):
        problems.append("--%s is in the man page's OPTIONS but not in `%s --help`" % (o, name))
    cmds = help_commands(helptext)
    if cmds:
        synopsis = "\n".join(sections.get("SYNOPSIS", []))
        man_cmds = set(re.findall(r"^%s +([a-z]+)" % re.escape(name), synopsis, re.M))
        for c in sorted(cmds ^ man_cmds):
            problems.append("command '%s' is in only one of `%s --help` and the man page's SYNOPSIS"
                            % (c, name))
    r = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True,
                       env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="0"))
    if r.returncode != 0 or r.stderr.strip():
        problems.append("man --warnings -l %s: %s" % (page, r.stderr.strip() or "exit %d" % r.returncode))
    for p in problems:
        print("FAIL " + p)
    print("%s: %d options, %d commands checked; %d problems" % (name, len(opts), len(cmds), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
