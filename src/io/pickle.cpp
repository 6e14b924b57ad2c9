// The restricted unpickler (see include/bertfit/io/pickle.h). Opcode semantics from CPython's
// Lib/pickletools.py / Modules/_pickle.c; what torch writes from FORMATS.md 2b and a torch 1.13 file
// disassembled with pickletools. Only protocol-2 opcodes that torch emits are accepted.
#include "bertfit/io/pickle.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <unordered_map>

#include "bertfit/error.h"

namespace bertfit::pickle {

namespace {

struct StorageClass {
  const char* name;
  DType dtype;
};
constexpr StorageClass kStorages[] = {
    {"torch.DoubleStorage", DType::F64}, {"torch.FloatStorage", DType::F32},
    {"torch.HalfStorage", DType::F16},   {"torch.BFloat16Storage", DType::BF16},
    {"torch.LongStorage", DType::I64},   {"torch.IntStorage", DType::I32},
    {"torch.ShortStorage", DType::I16},  {"torch.CharStorage", DType::I8},
    {"torch.ByteStorage", DType::U8},    {"torch.BoolStorage", DType::BOOL}};
constexpr const char* kOrderedDict = "collections.OrderedDict";
constexpr const char* kRebuildTensor = "torch._utils._rebuild_tensor_v2";
constexpr const char* kRebuildParameter = "torch._utils._rebuild_parameter";

bool storage_dtype(const std::string& global, DType* out) {
  for (const auto& s : kStorages)
    if (global == s.name) {
      *out = s.dtype;
      return true;
    }
  return false;
}

class Machine {
 public:
  Machine(const uint8_t* data, size_t size, const std::string& what) : p_(data), n_(size), what_(what) {}

  Pickle run() {
    while (true) {
      op_pos_ = pos_;
      const uint8_t op = byte();
      switch (op) {
        case 0x80: {  // PROTO
          const uint8_t v = byte();
          if (v > 2) fail("pickle protocol " + std::to_string(v) + " (torch writes protocol 2)");
          break;
        }
        case 'c':
          op_global();
          break;
        case '(':
          marks_.push_back(stack_.size());
          break;
        case '.':
          return finish();
        case 'Q':
          op_persid();
          break;
        case 'R':
          op_reduce();
          break;
        case 'b':
          op_build();
          break;
        case '}':
          push(make(Kind::DICT));
          break;
        case ']':
          push(make(Kind::LIST));
          break;
        case ')':
          push(shared(empty_tuple_, Kind::TUPLE, 0));
          break;
        case 't':
          tuple_from(pop_mark());
          break;
        case 0x85:
          tuple_from(take_top(1));
          break;
        case 0x86:
          tuple_from(take_top(2));
          break;
        case 0x87:
          tuple_from(take_top(3));
          break;
        case 's':
          set_items(take_top(2));
          break;
        case 'u':
          set_items(pop_mark());
          break;
        case 'a':
          append(take_top(1));
          break;
        case 'e':
          append(pop_mark());
          break;
        case 'X':
          push_str(u32());
          break;
        case 'U':
          push_str(byte());
          break;
        case 'T': {
          const uint32_t len = u32();
          if (len > 0x7FFFFFFF) fail("negative BINSTRING length");
          push_str(len);
          break;
        }
        case 'J':
          push_int(static_cast<int32_t>(u32()));
          break;
        case 'K': {
          const uint8_t v = byte();
          push(shared(small_ints_[v], Kind::INT, v));
          break;
        }
        case 'M': {
          const uint32_t lo = byte();
          push_int(lo | (static_cast<uint32_t>(byte()) << 8));
          break;
        }
        case 0x8a:
          op_long1();
          break;
        case 'G': {
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | byte();  // big-endian
          double d;
          std::memcpy(&d, &bits, 8);
          uint32_t o = make(Kind::FLOAT);
          objs_[o].f = d;
          push(o);
          break;
        }
        case 'N':
          push(shared(none_, Kind::NONE, 0));
          break;
        case 0x88:
          push(shared(true_, Kind::BOOL, 1));
          break;
        case 0x89:
          push(shared(false_, Kind::BOOL, 0));
          break;
        case 'q':
          memo_[byte()] = top();
          break;
        case 'r':
          memo_[u32()] = top();
          break;
        case 'h':
          push(memo_get(byte()));
          break;
        case 'j':
          push(memo_get(u32()));
          break;
        default: {
          char buf[8];
          std::snprintf(buf, sizeof buf, "0x%02x", op);
          fail(std::string("opcode ") + buf +
               " is not allowed (only the protocol-2 opcodes torch writes are)");
        }
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    throw FormatError(what_ + ": byte " + std::to_string(op_pos_) + ": " + problem);
  }
  uint8_t byte() {
    if (pos_ >= n_) fail("pickle truncated (no STOP opcode)");
    return p_[pos_++];
  }
  uint32_t u32() {
    if (n_ - pos_ < 4) fail("pickle truncated inside an argument");
    uint32_t v =
        p_[pos_] | (p_[pos_ + 1] << 8) | (p_[pos_ + 2] << 16) | (static_cast<uint32_t>(p_[pos_ + 3]) << 24);
    pos_ += 4;
    return v;
  }
  uint32_t make(Kind k) {
    if (objs_.size() >= kMaxObjects)
      fail("pickle creates more than " + std::to_string(kMaxObjects) +
           " objects; a state dict needs far fewer");
    objs_.emplace_back();
    objs_.back().kind = k;
    return static_cast<uint32_t>(objs_.size() - 1);
  }
  void push(uint32_t o) { stack_.push_back(o); }
  uint32_t top() {
    if (stack_.size() == base()) fail("memo put with an empty stack");
    return stack_.back();
  }
  size_t base() const { return marks_.empty() ? 0 : marks_.back(); }
  uint32_t pop() {
    if (stack_.size() == base()) fail("stack underflow");
    const uint32_t o = stack_.back();
    stack_.pop_back();
    return o;
  }
  std::vector<uint32_t> take_top(size_t k) {
    if (stack_.size() - base() < k) fail("stack underflow");
    std::vector<uint32_t> v(stack_.end() - static_cast<ptrdiff_t>(k), stack_.end());
    stack_.resize(stack_.size() - k);
    return v;
  }
  std::vector<uint32_t> pop_mark() {
    if (marks_.empty()) fail("no MARK on the stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<uint32_t> v(stack_.begin() + static_cast<ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return v;
  }
  uint32_t memo_get(uint32_t k) {
    auto it = memo_.find(k);
    if (it == memo_.end()) fail("memo key " + std::to_string(k) + " was never stored");
    return it->second;
  }
  void push_str(uint32_t len) {
    if (n_ - pos_ < len) fail("string of " + std::to_string(len) + " bytes runs past the end of the pickle");
    const uint32_t o = make(Kind::STR);
    objs_[o].ref = add_string(std::string(reinterpret_cast<const char*>(p_ + pos_), len));
    pos_ += len;
    push(o);
  }
  void push_int(int64_t v) {
    const uint32_t o = make(Kind::INT);
    objs_[o].i = v;
    push(o);
  }
  // Immutable values are created once and shared (an empty tuple can never be appended to).
  uint32_t shared(uint32_t& slot, Kind k, int64_t v) {
    if (slot == kUnset) {
      slot = make(k);
      objs_[slot].i = v;
    }
    return slot;
  }
  void op_long1() {
    const uint8_t len = byte();
    if (len > 8) fail("integer of " + std::to_string(len) + " bytes does not fit in 64 bits");
    if (n_ - pos_ < len) fail("pickle truncated inside LONG1");
    uint64_t v = 0;
    for (int k = len - 1; k >= 0; --k) v = (v << 8) | p_[pos_ + k];
    if (len > 0 && len < 8 && (p_[pos_ + len - 1] & 0x80)) v |= ~uint64_t{0} << (8 * len);  // sign-extend
    pos_ += len;
    push_int(static_cast<int64_t>(v));
  }
  void op_global() {
    std::string module = line(), name = line();
    const std::string g = module + "." + name;
    DType d;
    if (g != kOrderedDict && g != kRebuildTensor && g != kRebuildParameter && !storage_dtype(g, &d))
      fail("forbidden global " + g +
           " (only collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter "
           "and torch.*Storage may appear in a checkpoint; anything else could run code)");
    const uint32_t o = make(Kind::GLOBAL);
    objs_[o].ref = add_string(g);
    push(o);
  }
  std::string line() {
    const void* nl = std::memchr(p_ + pos_, '\n', n_ - pos_);
    if (!nl) fail("GLOBAL argument without a newline (truncated pickle?)");
    const size_t end = static_cast<const uint8_t*>(nl) - p_;
    std::string s(reinterpret_cast<const char*>(p_ + pos_), end - pos_);
    pos_ = end + 1;
    return s;
  }
  const Object& obj(uint32_t o) const { return objs_[o]; }
  uint32_t add_string(std::string s) {
    strings_.push_back(std::move(s));
    return static_cast<uint32_t>(strings_.size() - 1);
  }
  const std::string& str(uint32_t o) const { return strings_[objs_[o].ref]; }
  const char* kind_of(uint32_t o) const { return kind_name(objs_[o].kind); }
  void tuple_from(std::vector<uint32_t> items) {
    const uint32_t o = make(Kind::TUPLE);
    objs_[o].items = std::move(items);
    push(o);
  }
  void set_items(std::vector<uint32_t> kv) {
    if (kv.size() % 2) fail("SETITEMS with an odd number of items");
    const uint32_t d = pop();
    if (obj(d).kind != Kind::DICT) fail(std::string("SETITEM on a ") + kind_of(d) + ", not a dict");
    for (size_t k = 0; k < kv.size(); k += 2) {
      const Kind kk = obj(kv[k]).kind;
      if (kk != Kind::STR && kk != Kind::INT) fail(std::string("dict key of type ") + kind_of(kv[k]));
    }
    auto& items = objs_[d].items;
    items.insert(items.end(), kv.begin(), kv.end());
    push(d);
  }
  void append(std::vector<uint32_t> vals) {
    const uint32_t l = pop();
    if (obj(l).kind != Kind::LIST) fail(std::string("APPEND on a ") + kind_of(l) + ", not a list");
    auto& items = objs_[l].items;
    items.insert(items.end(), vals.begin(), vals.end());
    push(l);
  }
  void op_persid() {
    const uint32_t pid = pop();
    const Object& t = obj(pid);
    if (t.kind != Kind::TUPLE || t.items.size() != 5 || obj(t.items[0]).kind != Kind::STR ||
        str(t.items[0]) != "storage")
      fail("persistent id is not ('storage', StorageClass, key, location, numel)");
    const Object& cls = obj(t.items[1]);
    DType dtype;
    if (cls.kind != Kind::GLOBAL || !storage_dtype(str(t.items[1]), &dtype))
      fail("persistent id names " +
           std::string(cls.kind == Kind::GLOBAL ? str(t.items[1]) : kind_of(t.items[1])) +
           ", not a torch storage class");
    if (obj(t.items[2]).kind != Kind::STR || obj(t.items[3]).kind != Kind::STR ||
        obj(t.items[4]).kind != Kind::INT)
      fail("persistent id fields must be (str key, str location, int numel)");
    if (obj(t.items[4]).i < 0) fail("storage with a negative element count");
    StorageInfo si;
    si.dtype = dtype;
    si.key = str(t.items[2]);
    si.location = str(t.items[3]);
    si.numel = obj(t.items[4]).i;
    const uint32_t o = make(Kind::STORAGE);
    objs_[o].ref = static_cast<uint32_t>(storages_.size());
    storages_.push_back(std::move(si));
    push(o);
  }
  std::vector<int64_t> int_tuple(uint32_t o, const char* what) {
    const Object& t = obj(o);
    if (t.kind != Kind::TUPLE) fail(std::string("tensor ") + what + " is a " + kind_of(o) + ", not a tuple");
    std::vector<int64_t> v;
    for (uint32_t x : t.items) {
      if (obj(x).kind != Kind::INT || obj(x).i < 0)
        fail(std::string("tensor ") + what + " entries must be non-negative integers");
      v.push_back(obj(x).i);
    }
    return v;
  }
  uint32_t rebuild_tensor(const std::vector<uint32_t>& a) {
    if (a.size() != 6 && a.size() != 7)
      fail("_rebuild_tensor_v2 takes 6 or 7 arguments, got " + std::to_string(a.size()));
    if (obj(a[0]).kind != Kind::STORAGE) fail(std::string("tensor storage is a ") + kind_of(a[0]));
    if (obj(a[1]).kind != Kind::INT || obj(a[1]).i < 0)
      fail("tensor storage offset must be a non-negative int");
    std::vector<int64_t> size = int_tuple(a[2], "size"), stride = int_tuple(a[3], "stride");
    if (size.size() != stride.size())
      fail("tensor size has " + std::to_string(size.size()) + " dims but stride has " +
           std::to_string(stride.size()));
    if (obj(a[4]).kind != Kind::BOOL) fail("tensor requires_grad must be a bool");
    // The view must lie inside its storage: offset + sum((size_i - 1) * stride_i) < numel, overflow-checked.
    const StorageInfo& st = storages_[obj(a[0]).ref];
    int64_t numel = 1, last = obj(a[1]).i;
    bool empty = false;
    for (size_t k = 0; k < size.size(); ++k) {
      if (size[k] == 0) empty = true;
      if (__builtin_mul_overflow(numel, size[k], &numel)) fail("tensor size overflows");
    }
    if (!empty) {
      for (size_t k = 0; k < size.size(); ++k) {
        int64_t span;
        if (__builtin_mul_overflow(size[k] - 1, stride[k], &span) ||
            __builtin_add_overflow(last, span, &last))
          fail("tensor view overflows");
      }
      if (last >= st.numel)
        fail("tensor view reaches element " + std::to_string(last) + " of a storage with " +
             std::to_string(st.numel) + " elements");
    }
    TensorInfo ti;
    ti.storage = obj(a[0]).ref;
    ti.offset = obj(a[1]).i;
    ti.size = std::move(size);
    ti.stride = std::move(stride);
    ti.requires_grad = obj(a[4]).i != 0;
    const uint32_t o = make(Kind::TENSOR);
    objs_[o].ref = static_cast<uint32_t>(tensors_.size());
    tensors_.push_back(std::move(ti));
    return o;
  }
  void op_reduce() {
    const uint32_t args = pop(), fn = pop();
    if (obj(fn).kind != Kind::GLOBAL)
      fail(std::string("REDUCE calls a ") + kind_of(fn) + ", not an allowed global");
    if (obj(args).kind != Kind::TUPLE) fail("REDUCE arguments are not a tuple");
    const std::vector<uint32_t> a = obj(args).items;
    const std::string g = str(fn);
    if (g == kOrderedDict) {
      if (!a.empty()) fail("OrderedDict() called with arguments");
      const uint32_t d = make(Kind::DICT);
      objs_[d].ordered = true;
      push(d);
    } else if (g == kRebuildTensor) {
      push(rebuild_tensor(a));
    } else if (g == kRebuildParameter) {
      if (a.size() != 3 || obj(a[0]).kind != Kind::TENSOR)
        fail("_rebuild_parameter expects (tensor, bool, hooks)");
      push(a[0]);
    } else {
      fail("REDUCE calls " + g + ", which cannot be called");
    }
  }
  void op_build() {
    pop();  // the state
    const uint32_t o = pop();
    // nn.Module.state_dict() pickles its _metadata attribute through BUILD on the OrderedDict: ignored.
    if (obj(o).kind != Kind::DICT)
      fail(std::string("BUILD on a ") + kind_of(o) + " (only dicts are allowed)");
    push(o);
  }
  Pickle finish() {
    if (!marks_.empty()) fail("STOP with an open MARK");
    if (stack_.size() != 1)
      fail("STOP with " + std::to_string(stack_.size()) + " objects on the stack, expected 1");
    Pickle p;
    p.root = stack_.back();
    p.objects = std::move(objs_);
    p.strings = std::move(strings_);
    p.storages = std::move(storages_);
    p.tensors = std::move(tensors_);
    return p;
  }

  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0, op_pos_ = 0;
  const std::string& what_;
  std::vector<Object> objs_;
  std::vector<std::string> strings_;
  std::vector<uint32_t> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, uint32_t> memo_;
  std::vector<StorageInfo> storages_;
  std::vector<TensorInfo> tensors_;
  static constexpr uint32_t kUnset = ~0u;
  uint32_t none_ = kUnset, true_ = kUnset, false_ = kUnset, empty_tuple_ = kUnset;
  uint32_t small_ints_[256];

 public:
  void init() { std::fill(std::begin(small_ints_), std::end(small_ints_), kUnset); }
};

}  // namespace

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::NONE:
      return "None";
    case Kind::BOOL:
      return "bool";
    case Kind::INT:
      return "int";
    case Kind::FLOAT:
      return "float";
    case Kind::STR:
      return "str";
    case Kind::TUPLE:
      return "tuple";
    case Kind::LIST:
      return "list";
    case Kind::DICT:
      return "dict";
    case Kind::GLOBAL:
      return "global";
    case Kind::STORAGE:
      return "storage";
    default:
      return "tensor";
  }
}

Pickle unpickle(const uint8_t* data, size_t size, const std::string& what) {
  Machine m(data, size, what);
  m.init();
  return m.run();
}

}  // namespace bertfit::pickle
