// The x86 vector intrinsics, included through one place. GCC 12's AVX-512 intrinsics start some operations
// from _mm512_undefined_*(), which it then reports as "may be used uninitialised" once inlined (GCC bug
// 105593, fixed in GCC 13): a false warning in the compiler's own header, silenced here only (GCC only: clang
// has neither the bug nor the warning). Include this header instead of <immintrin.h> (the suppression
// applies where the header is first read).
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif
