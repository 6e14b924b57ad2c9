#!/usr/bin/python3
"""Writes tests/fixtures/data/apt-lists/: a tiny apt lists directory for tests/data/debian_test.cpp.

It has what the real lists have (bookworm: short description in Packages, long one in an lz4-compressed
i18n_Translation-en keyed by Description-md5) plus the cases the builder must handle: a long description
inside Packages (custom repositories), a contrib/ section, the same package in a second architecture's
list (lz4), two packages with identical texts, a stanza without Section, " ." paragraph breaks, tabs and
verbatim (two-space) lines, and a category too small to split. Needs the `lz4` tool.
    /usr/bin/python3 tools/data/make_apt_lists_fixture.py
"""
import hashlib
import os
import subprocess

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "data", "apt-lists")
PREFIX = "example.org_debian_dists_stable_main_"


def md5(text):
    return hashlib.md5(text.encode()).hexdigest()


def main():
    os.makedirs(OUT, exist_ok=True)
    packages = []  # (name, section, short, long-lines or None)
    for i in range(7):  # games: 7 packages, two with the same text -> 6 after de-duplication
        text = i if i != 6 else 5
        packages.append(("game%d" % i, "games", "Game number %d" % text,
                         ["A fun game, number %d." % text, ".", "Second\tparagraph."]))
    for i in range(6):
        packages.append(("util%d" % i, "contrib/utils", "Utility %d" % i,
                         ["Does thing %d" % i, "  verbatim  line", "end."]))
    for i in range(6):
        packages.append(("lib%d" % i, "libs", "Library %d" % i, ["Shared library %d." % i]))
    packages.append(("odd0", "oddball", "Odd one", ["Rare."]))
    packages.append(("odd1", "non-free/oddball", "Odd two", ["Rarer."]))
    stanzas, translations = [], []
    for name, section, short, long_lines in packages:
        full = short + "\n" + "\n".join(" " + l for l in long_lines) + "\n"
        stanzas.append("Package: %s\nVersion: 1.0\nArchitecture: amd64\nDescription: %s\n"
                       "Description-md5: %s\nSection: %s\nPriority: optional\n" % (name, short, md5(full), section))
        translations.append("Package: %s\nDescription-md5: %s\nDescription-en: %s" % (name, md5(full), full))
    # A custom repository's stanza: the long description is in Packages itself (no translation for it).
    stanzas.append("Package: lib9\nVersion: 2\nDescription: Library nine\n Inline long\n .\n description.\n"
                   "Section: libs\n")
    stanzas.append("Package: nosection\nVersion: 1\nDescription: Lost package\n")
    with open(os.path.join(OUT, PREFIX + "binary-amd64_Packages"), "w") as f:
        f.write("\n".join(stanzas))
    # Another architecture repeats game0 (dropped as a duplicate name).
    i386 = os.path.join(OUT, PREFIX + "binary-i386_Packages")
    with open(i386, "w") as f:
        f.write(stanzas[0].replace("amd64", "i386"))
    tr = os.path.join(OUT, PREFIX + "i18n_Translation-en")
    with open(tr, "w") as f:
        f.write("\n".join(translations))
    for path in (i386, tr):
        subprocess.run(["lz4", "-q", "-f", "--rm", path, path + ".lz4"], check=True)


if __name__ == "__main__":
    main()
