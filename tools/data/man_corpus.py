#!/usr/bin/env python3
"""In-domain text beyond the demo's task, for the paper's IDPT: the English manual pages installed on this machine.

The demo's task classifies Debian packages by their descriptions; manual pages describe the same programs,
libraries and file formats in the same register, and every Debian machine has some. This turns them into a
pre-training corpus: one paragraph of running text per line (the NAME line, DESCRIPTION, OPTIONS' explanations
and the like), without synopses, option tags, code examples, tables, SEE ALSO, authors or copyright notices.

    /usr/bin/python3 tools/data/man_corpus.py OUT.txt [--man-dir /usr/share/man] [--exclude GLOB ...]

The roff is stripped here rather than rendered by man(1): rendering forks groff per page (0.25 s each, 20
minutes for the ~20,000 pages of a developer machine); this reads them all in seconds. Its output is running text
for masked LM, not a faithful rendering: a stray macro argument here and there costs nothing.

--exclude (default: gcloud*): pages left out by file-name glob. The default drops google-cloud-cli's 16,600 pages
of one command's reference, which a machine may carry but Debian does not ship, and which would otherwise be 90%
of the corpus. Symbolic links and `.so` redirections are skipped (the page they point to is read once); equal
paragraphs are kept once. Prints the pages read and the paragraphs, words and bytes written. Writes OUT.txt.tmp,
then renames it.
"""
import argparse
import fnmatch
import gzip
import os
import re
import sys

SKIPPED_SECTIONS = {"SYNOPSIS", "SEE ALSO", "AUTHOR", "AUTHORS", "COPYRIGHT", "LICENSE", "REPORTING BUGS",
                    "EXAMPLE", "EXAMPLES", "FILES", "COLOPHON", "HISTORY", "BUGS", "VERSION", "AVAILABILITY",
                    "SOURCE", "ENVIRONMENT", "EXIT STATUS", "RETURN VALUE", "ERRORS"}
TEXT_MACROS = {"B", "I", "R", "SM", "SB"}  # arguments joined by spaces
ALTERNATING = {"BR", "BI", "IB", "IR", "RB", "RI"}  # arguments joined without spaces (fonts alternate)
BREAKS = {"PP", "P", "LP", "HP", "sp", "br", "RS", "RE", "in", "Pp", "Bl", "El", "It", "bp"}
VERBATIM = {"nf": "fi", "EX": "EE", "TS": "TE", "Bd": "Ed", "de": ".", "ig": "."}  # skipped up to the end macro

NAMED_CHARS = {"aq": "'", "dq": '"', "em": "—", "en": "-", "hy": "-", "lq": '"', "rq": '"', "oq": "'", "cq": "'",
               "co": "©", "rg": "®", "tm": "™", "mu": "×", "bu": "", "ti": "~", "ha": "^", "ga": "`", "dg": "",
               "Aq": "'", "L\"": '"', "R\"": '"', "C`": "", "C'": "", "PI": "π", "ua": "↑", "da": "↓", "->": "→",
               "<-": "←", "ge": "≥", "le": "≤", "+-": "±", "sc": "§", "de": "°"}


def strip_escapes(s):
    s = re.sub(r"\\f(\[[^\]]*\]|\(..|.)", "", s)  # font changes
    s = re.sub(r"\\s[+-]?(\d|\(\d\d|\[\d+\])", "", s)  # size changes
    s = re.sub(r"\\[(*]\(?(..)", lambda m: NAMED_CHARS.get(m.group(1), ""), s)  # \(xx and \*(xx
    s = re.sub(r"\\[(*]\[([^\]]*)\]", lambda m: NAMED_CHARS.get(m.group(1), ""), s)  # \[xx] and \*[xx]
    s = re.sub(r"\\\*(.)", "", s)  # one-letter strings
    s = re.sub(r"\\[nwhvlLDoHSxXkmMNRVYZ]('[^']*'|\[[^\]]*\]|\(..|.)", "", s)  # registers, motions, devices
    s = s.replace("\\-", "-").replace("\\e", "\\").replace("\\~", " ").replace("\\0", " ").replace("\\ ", " ")
    s = re.sub(r"\\[&|^c%:)/,!{}\"'`]", "", s)  # zero-width and the rest of the line's comment
    s = re.sub(r"\\.", "", s)  # anything else: dropped
    return s


def macro_args(rest):
    args = re.findall(r'"((?:[^"]|"")*)"|(\S+)', rest)
    return [a or b for a, b in args]


def paragraphs(text):
    """Paragraphs of running text of one page's roff source."""
    out, para, section, end, skip_next = [], [], "", None, False

    def flush():
        if para and section not in SKIPPED_SECTIONS:
            out.append(" ".join(para))
        para.clear()

    for line in text.split("\n"):
        if end is not None:  # inside a block skipped to its end macro
            if re.match(r"^[.']\s*" + re.escape(end) + r"\b", line) or (end == "." and line.strip() == ".."):
                end = None
            continue
        if line.startswith((".\\\"", "'\\\"", '.\\"', "\\\"")):
            continue
        if line.startswith((".", "'")):
            m = re.match(r"^[.']\s*(\S+)\s*(.*)$", line)
            if not m:
                continue
            name, rest = m.group(1), m.group(2)
            if name in VERBATIM:
                flush()
                end = VERBATIM[name]
            elif name in ("SH", "SS", "Sh", "Ss"):
                flush()
                heading = strip_escapes(" ".join(macro_args(rest))).strip().upper()
                section = heading if name in ("SH", "Sh") else section
            elif name in ("TP", "IP", "TQ"):
                flush()
                skip_next = name in ("TP", "TQ")  # the next line is the tag (an option's spelling)
            elif name in BREAKS:
                flush()
            elif name in TEXT_MACROS or name in ALTERNATING:
                text_ = ("" if name in ALTERNATING else " ").join(macro_args(rest))
                if skip_next:
                    skip_next = False
                elif text_:
                    para.append(strip_escapes(text_))
            elif name == "Nd":  # mdoc's one-line description
                para.append(strip_escapes(rest))
            elif name == "so":
                return None  # a redirection: its target is read on its own
            # any other request (.TH, .if, .ds, .nr, mdoc's flags...): no running text
            continue
        if skip_next:
            skip_next = False
            continue
        s = strip_escapes(line).strip()
        if s:
            para.append(s)
        else:
            flush()
    flush()
    return out


def running_text(p):
    p = re.sub(r"\s+", " ", p).strip()
    words = p.split()
    if len(words) < 6:
        return None
    letters = sum(ch.isalpha() for ch in p)
    return p if letters >= 0.6 * len(p) else None  # option lists, numbers, leftovers of tables


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--man-dir", default="/usr/share/man")
    ap.add_argument("--exclude", action="append", default=None, help="file-name glob (default: gcloud*)")
    a = ap.parse_args()
    excludes = a.exclude if a.exclude is not None else ["gcloud*"]
    seen, pages, kept, words = set(), 0, 0, 0
    tmp = a.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        for sec in sorted(d for d in os.listdir(a.man_dir) if re.fullmatch(r"man\d\w*", d)):
            d = os.path.join(a.man_dir, sec)
            for f in sorted(os.listdir(d)):
                path = os.path.join(d, f)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                if any(fnmatch.fnmatch(f, g) for g in excludes):
                    continue
                opener = gzip.open if f.endswith(".gz") else open
                try:
                    with opener(path, "rb") as fh:
                        text = fh.read().decode("utf-8", errors="replace")
                except (OSError, EOFError) as e:
                    print(f"man_corpus: {path}: {e} (skipped)", file=sys.stderr)
                    continue
                ps = paragraphs(text)
                if ps is None:
                    continue
                pages += 1
                for p in ps:
                    p = running_text(p)
                    if p is None or p in seen:
                        continue
                    seen.add(p)
                    out.write(p + "\n")
                    kept += 1
                    words += len(p.split())
    os.replace(tmp, a.out)
    print(f"man_corpus: {pages} pages, {kept} paragraphs, {words} words, {os.path.getsize(a.out)} bytes -> {a.out}")


if __name__ == "__main__":
    main()
