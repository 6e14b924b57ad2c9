#!/usr/bin/python3
"""Prints one JSON line naming the CPU the benchmark runs on, for results.jsonl and its report.

    /usr/bin/python3 tools/bench/machine.py              # the JSON record (bench/engine/run.sh's first line)
    /usr/bin/python3 tools/bench/machine.py --describe   # one line: "AMD EPYC, family 25 model 17 (Zen 4)"

The project's machines all say "AMD EPYC" or "Intel Xeon" in /proc/cpuinfo's model name, whatever the
generation, and the generations differ in what the figures mean: a Zen 4 EPYC (family 25) executes a 512-bit
FMA as two 256-bit halves, so its FMA peak is half a Zen 5's (family 26) at the same clock. The record keeps
the family / model numbers (what identifies the part) and names the microarchitecture where the table below
knows it; the FMA probe's 512-bit / 256-bit ratio in the same run says the rest.
"""
import json
import os
import sys


def cpuinfo():
    fields = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if not line.strip():
                break  # the first processor's block is enough: the machines have one kind of core
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return fields


# (vendor, family) -> [(first model, last model, name)], from the vendors' published family / model numbers.
UARCH = {
    ("AuthenticAMD", 23): [(0x00, 0x2f, "Zen / Zen+"), (0x30, 0xff, "Zen 2")],
    ("AuthenticAMD", 25): [(0x00, 0x0f, "Zen 3"), (0x10, 0x1f, "Zen 4"), (0x20, 0x5f, "Zen 3"),
                           (0x60, 0x7f, "Zen 4"), (0xa0, 0xaf, "Zen 4")],
    ("AuthenticAMD", 26): [(0x00, 0xff, "Zen 5")],
    ("GenuineIntel", 6): [(0x55, 0x55, "Skylake-SP / Cascade Lake / Cooper Lake"), (0x6a, 0x6c, "Ice Lake-SP"),
                          (0x8f, 0x8f, "Sapphire Rapids"), (0xcf, 0xcf, "Emerald Rapids"),
                          (0xad, 0xae, "Granite Rapids")],
}


def uarch(vendor, family, model):
    for lo, hi, name in UARCH.get((vendor, family), []):
        if lo <= model <= hi:
            return name
    return ""


def main():
    info = cpuinfo()
    vendor = info.get("vendor_id", "")
    family = int(info.get("cpu family", "0") or 0)
    model = int(info.get("model", "0") or 0)
    flags = set(info.get("flags", "").split())
    isa = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8")
           if f in flags]
    name = uarch(vendor, family, model)
    cpu = "%s, family %d model %d%s" % (info.get("model name", "?"), family, model, " (%s)" % name if name else "")
    if "--describe" in sys.argv:  # for the other benchmarks' header lines, which add their own core counts
        print(cpu)
        return
    desc = "%s, %d cores; %s" % (cpu, os.cpu_count() or 0, " ".join(isa))
    print(json.dumps({"engine": "machine", "cpu": info.get("model name", ""), "vendor": vendor, "family": family,
                      "model_number": model, "stepping": int(info.get("stepping", "0") or 0), "uarch": name,
                      "isa": isa, "cores": os.cpu_count() or 0, "description": desc}))


if __name__ == "__main__":
    main()
