#!/usr/bin/env python3
"""A second task on the demo's texts, for multi-task fine-tuning (issue 15, item 9): the package's name family.

The demo's data set (`bertfit dataset debian`) has one labelled task: a package's Debian section from its
descriptions. Its id column is the package name, which Debian's naming policies tie to what the package is
(lib*-dev, python3-*, *-perl, golang-*, ...). This script copies a data-set TSV with the section replaced by that
family, so that the same texts carry a second, related label, as the paper's multi-task experiment needs:

    /usr/bin/python3 tools/data/name_family.py out/demo/data/train.tsv out/names/train.tsv

Input: a TSV with a header, the package name in the first column (paperid) and the label in the last
(categories). Output: the same rows and columns, the last one named `family` and holding the family. The rules are
tried in order (first match wins); a name that matches none is `other`. Written to a temporary name, then renamed.
"""
import os
import re
import sys

# (family, pattern on the package name), first match wins: the suffix conventions (Perl's and Java's
# lib*-perl / lib*-java) before the prefix ones, so that libfoo-perl is perl, not lib.
RULES = [
    ("perl", r"-perl$"),
    ("java", r"-java$"),
    ("python", r"^(python3?|pypy3?)-"),
    ("golang", r"^golang-"),
    ("rust", r"^(librust|rust)-"),
    ("r", r"^r-(cran|bioc|other)-"),
    ("node", r"^node-"),
    ("ruby", r"^ruby-"),
    ("fonts", r"^fonts?-"),
    ("lib-dev", r"^lib.*-dev$"),
    ("doc", r"-doc$"),
    ("lib", r"^lib"),
    ("desktop", r"^(gir1\.2|qml|gnome|kde|plasma)"),
]
COMPILED = [(family, re.compile(pattern)) for family, pattern in RULES]


def family(name: str) -> str:
    for fam, pattern in COMPILED:
        if pattern.search(name):
            return fam
    return "other"


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: name_family.py INPUT.tsv OUTPUT.tsv", file=sys.stderr)
        return 2
    src, dst = sys.argv[1], sys.argv[2]
    tmp = f"{dst}.tmp{os.getpid()}"  # two runs making the same file do not share a temporary
    rc = convert(src, tmp)
    if rc == 0:
        os.replace(tmp, dst)
    elif os.path.exists(tmp):
        os.remove(tmp)
    return rc


def convert(src: str, tmp: str) -> int:
    with open(src, encoding="utf-8", newline="") as fin, open(tmp, "w", encoding="utf-8", newline="") as fout:
        header = fin.readline().rstrip("\n").split("\t")
        if len(header) < 2:
            print(f"{src}:1: expected a header of at least 2 tab-separated columns", file=sys.stderr)
            return 1
        fout.write("\t".join(header[:-1] + ["family"]) + "\n")
        for lineno, line in enumerate(fin, start=2):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != len(header):
                print(f"{src}:{lineno}: {len(fields)} fields, the header has {len(header)}", file=sys.stderr)
                return 1
            fout.write("\t".join(fields[:-1] + [family(fields[0])]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
