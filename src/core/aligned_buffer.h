// A 64-byte aligned, zero-initialised float buffer: one allocation per lifetime class (parameters, gradients,
// moments, activations), carved into views.
//
// Buffers of 2 MiB or more are 2 MiB aligned and advised to the kernel as transparent huge pages
// (madvise(MADV_HUGEPAGE): Debian's default THP mode, "madvise", backs only such regions). The products read
// activations with row strides of 3-12 KiB and the attention heads' rows likewise, each row on its own 4 KiB
// page; with 2 MiB pages the TLB covers them. Measured on an AMD EPYC (Zen 5) (docs/benchmarks.md): two
// BERT-base models in one process, alternating steps, 1.5-4.5% faster steps and passes from the model's
// buffers alone; with the GEMMs' packing scratch too, a fine-tuning step at batch 32 about 8%.
// BERTFIT_HUGE_PAGES=0 allocates 4 KiB-page memory as before.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <utility>

namespace bertfit {

// bytes (rounded up to 64, or to 2 MiB for huge pages) of zeroed memory for std::free; throws bad_alloc.
void* allocate_zeroed(size_t bytes);
// A BERTFIT_HUGE_PAGES other than unset, empty, 0 or 1 is a ConfigError (the CLI checks at startup).
void check_huge_pages_setting();
// One line for `bertfit info`: whether large buffers are advised as huge pages, and the kernel's THP mode.
std::string huge_pages_description();
// The kernel's transparent huge page mode ("always", "madvise" or "never": the bracketed word of
// /sys/kernel/mm/transparent_hugepage/enabled), or "" where that file cannot be read or parsed.
std::string transparent_huge_page_mode();

template <typename T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t n) { resize(n); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer(AlignedBuffer&& o) noexcept { swap(o); }
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    swap(o);
    return *this;
  }
  ~AlignedBuffer() { std::free(data_); }

  // Discards the contents; the new buffer is zeroed.
  void resize(size_t n) {
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
    if (n == 0) return;
    data_ = static_cast<T*>(allocate_zeroed(n * sizeof(T)));
    size_ = n;
  }
  void zero() {
    if (data_) std::memset(static_cast<void*>(data_), 0, size_ * sizeof(T));
  }
  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }

 private:
  void swap(AlignedBuffer& o) {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
  }
  T* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace bertfit
