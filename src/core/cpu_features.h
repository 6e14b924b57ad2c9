// Which vector instruction sets the kernels may use. The baseline build targets AVX2 + FMA (x86-64-v3); a
// kernel with an AVX-512 body checks use_avx512() at run time, so one binary runs on both kinds of CPU.
//
// Every AVX-512 body computes the same formula with the same IEEE operations in the same order as its AVX2
// twin (only the width differs), so results do not depend on the instruction set: tests check that bit for
// bit by capping the ISA with set_max_isa(). Users can cap it too, like oneDNN's ONEDNN_MAX_CPU_ISA, with
// BERTFIT_MAX_ISA=avx2 in the environment (read once, at the first query).
#pragma once

namespace bertfit {

enum class Isa { AVX2, AVX512 };

// AVX-512 F/DQ/VL/BW present, and not capped by BERTFIT_MAX_ISA or set_max_isa().
bool use_avx512();
// The low-precision dot-product instructions (backend/cpu/gemm_bf16.h, gemm_int8.h): AVX512_BF16
// (vdpbf16ps) and AVX512_VNNI (vpdpbusd), each only when use_avx512() holds too (BERTFIT_MAX_ISA=avx2 turns
// them off with the rest of AVX-512, which is how tests reach the fallbacks on a CPU that has them).
bool use_avx512_bf16();
bool use_avx512_vnni();
// Caps the instruction set the kernels use (never raises it above what the CPU has).
void set_max_isa(Isa isa);

}  // namespace bertfit
