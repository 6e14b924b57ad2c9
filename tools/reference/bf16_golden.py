#!/usr/bin/python3
"""Golden file for tests/backend/bf16_test.cpp: float -> bfloat16 as PyTorch converts it on CPUs.

Run with Debian's torch (1.13): /usr/bin/python3 tools/reference/bf16_golden.py > tests/fixtures/backend/bf16_golden.txt
Each line: the float's bits and the bits of tensor.to(torch.bfloat16), both in hex. The inputs cover what the
rounding can get wrong: exact ties (low half 0x8000) above even and odd bf16 values, one ulp either side of
a tie, subnormals, the largest finite floats (which round up to infinity), infinities, NaNs of both signs and
other payloads, and normal values over many magnitudes.
"""
import struct

import torch


def bits_to_float(b):
    return struct.unpack("<f", struct.pack("<I", b))[0]


def main():
    gen = torch.Generator().manual_seed(13)
    words = []
    # Ties and their neighbours, above even and odd bf16 significands, positive and negative.
    for hi in [0x3F80, 0x3F81, 0x4049, 0x404A, 0x0001, 0x0002, 0x7F7F, 0x7F7E, 0x0080, 0x0081]:
        for lo in [0x0000, 0x7FFF, 0x8000, 0x8001, 0xFFFF, 0x0001]:
            for sign in [0, 0x80000000]:
                words.append(sign | (hi << 16) | lo)
    # Special values: zeros, infinities, NaNs (quiet, signalling, negative, with payload), the extremes.
    words += [0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001,
              0x7FBFFFFF, 0xFFFFFFFF, 0x7FFFFFFF, 0x00000001, 0x807FFFFF, 0x007FFFFF, 0x7F7FFFFF, 0xFF7FFFFF,
              0x00800000]
    # Random bit patterns (every exponent, NaNs included) and normal values at many scales.
    words += torch.randint(0, 2**32, (2000,), generator=gen, dtype=torch.int64).tolist()
    for scale in [1e-30, 1e-6, 1e-2, 1.0, 3.0, 1e3, 1e20]:
        x = torch.randn(200, generator=gen) * scale
        words += [struct.unpack("<I", struct.pack("<f", v))[0] for v in x.tolist()]
    x = torch.tensor([bits_to_float(w) for w in words], dtype=torch.float32)
    # Check the tensor holds the intended bits (NaN payloads survive the Python float round trip?).
    got = x.view(torch.int32).tolist()
    y = x.to(torch.bfloat16).view(torch.int16).tolist()
    for w, g, b in zip(words, got, y):
        print("%08x %04x" % (g & 0xFFFFFFFF, b & 0xFFFF))


if __name__ == "__main__":
    main()
