#!/usr/bin/env python3
"""md2man.py: turn one of our reference pages (docs/snapbackd.md, docs/snapback.md)
into a man page, so the man page and the Markdown never drift apart.

    md2man.py INPUT.md OUTPUT.N [--date YYYY-MM-DD] [--version V]

It knows only the Markdown those pages use: a "# name(N)" title, "## SECTION"
headings, paragraphs, fenced code blocks, "- " and "1. " lists, definition lists
("`--option ARG`" then ": text" lines), pipe tables (rendered with tbl), and inline
`code`, **bold**, *italic* and [text](link). Anything else is an error, not a guess.
Python standard library only."""
import argparse
import os
import re
import sys
import time


def esc(s):
    """roff-escapes plain text"""
    s = s.replace("\\", "\\e").replace("-", "\\-")
    return s


def inline(s):
    """Markdown inline markup -> roff; the text between markups is escaped"""
    out, i = [], 0
    pat = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*|\*([^*]+)\*|\[([^\]]+)\]\(([^)]+)\)")
    for m in pat.finditer(s):
        out.append(esc(s[i:m.start()]))
        if m.group(1) is not None:
            out.append("\\fB" + esc(m.group(1)) + "\\fR")
        elif m.group(2) is not None:
            out.append("\\fB" + esc(m.group(2)) + "\\fR")
        elif m.group(3) is not None:
            out.append("\\fI" + esc(m.group(3)) + "\\fR")
        else:
            out.append(esc(m.group(4)))
        i = m.end()
    out.append(esc(s[i:]))
    return "".join(out)


def line_out(s):
    """a text line: protect a leading control character"""
    return "\\&" + s if s[:1] in (".", "'") else s


def convert(md, date, version):
    lines = md.splitlines()
    if not lines or not re.match(r"^# [a-z][a-z0-9-]*\(\d\)$", lines[0]):
        raise SystemExit("md2man: the first line must be '# name(N)', got %r" % (lines[:1],))
    name, section = re.match(r"^# (\S+)\((\d)\)$", lines[0]).groups()
    out = ["'\\\" t", '.TH "%s" "%s" "%s" "snapback %s" "snapback"' % (name.upper(), section, date, version)]
    i, n, sect = 1, len(lines), ""
    while i < n:
        ln = lines[i]
        if not ln.strip():
            i += 1
        elif ln.startswith("<!--"):
            while i < n and "-->" not in lines[i]:
                i += 1
            i += 1
        elif ln.startswith("## "):
            sect = ln[3:].strip().upper()
            out.append(".SH " + esc(sect))
            i += 1
        elif ln.startswith("### "):
            out.append(".SS " + esc(ln[4:].strip()))
            i += 1
        elif ln.startswith("```"):
            i += 1
            out += [".PP", ".RS 4", ".nf"]
            while i < n and not lines[i].startswith("```"):
                out.append(line_out(esc(lines[i])))
                i += 1
            out += [".fi", ".RE"]
            i += 1
        elif ln.startswith("|"):
            rows = []
            while i < n and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(re.match(r"^:?-+:?$", c) for c in cells):
                    rows.append(cells)
                i += 1
            cols = len(rows[0])
            out += [".PP", ".TS", "allbox tab(\t);", " ".join(["lb"] * cols), " ".join(["l"] * cols) + "."]
            for r in rows:
                out.append("\t".join("T{\n" + inline(c) + "\nT}" for c in (r + [""] * cols)[:cols]))
            out.append(".TE")
        elif re.match(r"^- ", ln) or re.match(r"^\d+\. ", ln):
            while i < n and (re.match(r"^- ", lines[i]) or re.match(r"^\d+\. ", lines[i])):
                m = re.match(r"^(- |(\d+)\. )(.*)$", lines[i])
                mark = "\\(bu" if m.group(1) == "- " else m.group(2) + "."
                text = [m.group(3)]
                i += 1
                while i < n and lines[i].startswith("  ") and lines[i].strip():
                    text.append(lines[i].strip())
                    i += 1
                out += [".IP %s 4" % mark, line_out(inline(" ".join(text)))]
        elif i + 1 < n and lines[i + 1].startswith(": "):
            out += [".TP", line_out(inline(ln.strip()))]
            i += 1
            para = []
            while i < n and lines[i].strip() and not lines[i].startswith("```"):
                s = lines[i]
                s = s[2:] if s.startswith(": ") else s.strip()
                m = re.match(r"^(\d+)\. (.*)$", s)
                if m:   # a numbered step inside a definition
                    if para:
                        out.append(line_out(inline(" ".join(para))))
                    out += [".RS 4", ".IP %s. 4" % m.group(1)]
                    para = [m.group(2)]
                    i += 1
                    while i < n and lines[i].startswith("     ") and lines[i].strip():
                        para.append(lines[i].strip())
                        i += 1
                    out += [line_out(inline(" ".join(para))), ".RE"]
                    para = []
                    continue
                para.append(s)
                i += 1
            if para:
                out.append(line_out(inline(" ".join(para))))
        else:
            para = []
            while i < n and lines[i].strip() and not re.match(r"^(#|```|\||- |\d+\. |<!--)", lines[i]):
                para.append(lines[i].strip())
                i += 1
            if not para:
                raise SystemExit("md2man: line %d: cannot convert %r" % (i + 1, lines[i]))
            text = " ".join(para)
            if sect == "NAME":   # whatis wants "name \- description"
                m = re.match(r"^([a-z0-9-]+): (.*)$", text)
                if not m:
                    raise SystemExit("md2man: NAME must read 'name: description', got %r" % text)
                out.append(esc(m.group(1)) + " \\- " + inline(m.group(2)))
                continue
            out += [".PP", line_out(inline(text))]
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--date", help="default: SOURCE_DATE_EPOCH (reproducible builds), else the input's mtime")
    ap.add_argument("--version", default="0")
    a = ap.parse_args()
    date = a.date or time.strftime("%Y-%m-%d", time.gmtime(
        int(os.environ.get("SOURCE_DATE_EPOCH") or os.path.getmtime(a.input))))
    with open(a.input, encoding="utf-8") as f:
        roff = convert(f.read(), date, a.version)
    with open(a.output, "w", encoding="utf-8") as f:
        f.write(roff)
    return 0


if __name__ == "__main__":
    sys.exit(main())
