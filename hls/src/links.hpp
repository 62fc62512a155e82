#pragma once
// The synthesised kernel's channels between processes (docs/hls-dataflow.md): how a unit reaches
// DRAM (request/response streams to the arbiter of each channel), how the load unit's engines
// reach the operand banks (fill words to the GEMM process, which owns every bank), and how the
// store unit reads an accumulator tile (a drain stream from the same process). The execute
// functions see these only through DdrIn/DdrOut, BankOut/IdxOut and CTileIn (kernel.hpp), which in
// C-simulation are plain pointers.
//
// Included by kernel.hpp, inside the synthesis build only, before Ctx.
#include <cstddef>

namespace sat::kernel {

// ---- Sizes, all derived from arch/config.hpp -----------------------------------------------------
// Elements of one fill word: kLoadFillBeats bus beats of BF16, the load unit's bank write width.
inline constexpr int kFillElems = arch::kLoadFillBeats * arch::kDdrBusBits / 16;
// Processes that reach DRAM: the load engines, then VEC, STORE, UPD and PGEN (GEMM touches none).
inline constexpr int kDdrClients = arch::kLoadEngines + 4;
inline constexpr int kClientVec = arch::kLoadEngines, kClientStore = kClientVec + 1,
                     kClientUpd = kClientVec + 2, kClientPgen = kClientVec + 3;
// Decoupling depth of the arbiter, fill and drain links. config.hpp has no constant of its own for
// these yet (docs/hls-dataflow.md, "Open items"); the token FIFO depth is the one it has for a
// channel between two units.
inline constexpr int kLinkDepth = arch::kTokenDepth;

// ---- DRAM: one request, one response ----------------------------------------------------------------
enum : uint8_t { kReqRead = 0, kReqWrite = 1, kReqStop = 2 };
struct DdrReq {
  uint64_t offset;   // halfwords into the channel
  uint16_t data;     // kReqWrite
  uint8_t kind;
};
using DdrReqStream = ::hls::stream<DdrReq, kLinkDepth>;
using DdrRspStream = ::hls::stream<uint16_t, kLinkDepth>;

// ---- Operand banks: fill words, load engine -> GEMM process -----------------------------------------
enum : uint8_t { kFillA = 0, kFillB = 1, kFillIdx = 2 };
struct FillWord {
  uint32_t base;    // element index in the bank of the first element
  uint16_t count;   // elements used, consecutive from base; 0: a marker
  uint8_t target;   // kFillA, kFillB, kFillIdx
  uint8_t bank;
  bool end_load;    // marker: every word of this engine's current load is before it
  bool stop;        // marker: the engine has ended
  uint16_t data[kFillElems];
};
using FillStream = ::hls::stream<FillWord, kLinkDepth>;

// ---- Accumulators: drain requests, store -> GEMM process; values back ----------------------------------
struct DrainReq {
  uint32_t count;   // elements of the tile, row-major from index 0
  uint8_t bank;
  bool stop;        // the store unit has ended
};
using DrainReqStream = ::hls::stream<DrainReq, 2>;
using DrainStream = ::hls::stream<float, kLinkDepth>;

// What one process holds of the channels above; members that a process does not use stay null.
struct Client {
  DdrReqStream* req[arch::kDdrChannels] = {};
  DdrRspStream* rsp[arch::kDdrChannels] = {};
  FillStream* fill = nullptr;         // load engine
  FillWord pending{};                 // load engine: the fill word being packed
  DrainReqStream* drain_req = nullptr;   // store
  DrainStream* drain = nullptr;          // store
};

// One halfword of DRAM: a read or a write is one round trip through the channel's arbiter. A write
// waits for its acknowledgement, so that a token signalled after it orders every later access by
// any unit behind it (the ISA's only synchronisation).
class DdrRef {
 public:
  DdrRef(Client* c, uint32_t ch, uint64_t off) : c_(c), ch_(ch), off_(off) {}
  operator uint16_t() const {
    c_->req[ch_]->write(DdrReq{off_, 0, kReqRead});
    return c_->rsp[ch_]->read();
  }
  const DdrRef& operator=(uint16_t v) const {
    c_->req[ch_]->write(DdrReq{off_, v, kReqWrite});
    (void)c_->rsp[ch_]->read();
    return *this;
  }
  const DdrRef& operator=(const DdrRef& o) const { return *this = static_cast<uint16_t>(o); }

 private:
  Client* c_;
  uint32_t ch_;
  uint64_t off_;
};

class DdrPtr {
 public:
  DdrPtr() = default;
  DdrPtr(std::nullptr_t) {}
  DdrPtr(Client* c, uint32_t ch, uint64_t off) : c_(c), ch_(ch), off_(off) {}
  DdrRef operator[](uint64_t i) const { return DdrRef(c_, ch_, off_ + i); }
  DdrPtr operator+(uint64_t i) const { return DdrPtr(c_, ch_, off_ + i); }
  bool operator==(std::nullptr_t) const { return c_ == nullptr; }
  bool operator!=(std::nullptr_t) const { return c_ != nullptr; }

 private:
  Client* c_ = nullptr;
  uint32_t ch_ = 0;
  uint64_t off_ = 0;
};
using DdrIn = DdrPtr;
using DdrOut = DdrPtr;

// Appends one element to the engine's fill word; a word leaves when it is full or the next element
// does not follow it. Loads write their banks in ascending order, so words are full but for a tile
// row's last.
inline void fill_put(Client* c, uint8_t target, uint8_t bank, uint32_t index, uint16_t v) {
  FillWord& w = c->pending;
  if (w.count != 0 && (w.target != target || w.bank != bank || w.base + w.count != index || w.count == kFillElems)) {
    c->fill->write(w);
    w.count = 0;
  }
  if (w.count == 0) {
    w.base = index;
    w.target = target;
    w.bank = bank;
    w.end_load = false;
    w.stop = false;
  }
  w.data[w.count] = v;
  ++w.count;
}
// Ends a load: its last word, then the marker the GEMM process counts before it uses the bank.
inline void fill_end_load(Client* c) {
  if (c->pending.count != 0) c->fill->write(c->pending);
  c->pending.count = 0;
  FillWord m{};
  m.end_load = true;
  c->fill->write(m);
}

class BankRef {
 public:
  BankRef(Client* c, uint8_t target, uint8_t bank, uint32_t i) : c_(c), target_(target), bank_(bank), i_(i) {}
  const BankRef& operator=(uint16_t v) const {
    fill_put(c_, target_, bank_, i_, v);
    return *this;
  }

 private:
  Client* c_;
  uint8_t target_, bank_;
  uint32_t i_;
};

class BankPtr {
 public:
  BankPtr() = default;
  BankPtr(Client* c, uint8_t target, uint8_t bank, uint32_t off) : c_(c), target_(target), bank_(bank), off_(off) {}
  BankRef operator[](uint32_t i) const { return BankRef(c_, target_, bank_, off_ + i); }
  BankPtr operator+(uint32_t i) const { return BankPtr(c_, target_, bank_, off_ + i); }

 private:
  Client* c_ = nullptr;
  uint8_t target_ = 0, bank_ = 0;
  uint32_t off_ = 0;
};
using BankOut = BankPtr;
using IdxOut = BankPtr;

// The banks as a load engine names them: cx.buf->a[bank], ->b[bank], ->bidx[bank].
struct BankSet {
  Client* c;
  uint8_t target;
  BankPtr operator[](uint32_t bank) const { return BankPtr(c, target, static_cast<uint8_t>(bank), 0); }
};
struct LoadView {
  BankSet a, b, bidx;
};

// A C tile as the store unit reads it: the GEMM process sends it in row-major order once the
// request is made, so element i is the i-th value of the stream.
class CTileIn {
 public:
  CTileIn(DrainStream* s) : s_(s) {}
  float operator[](uint32_t) const { return s_->read(); }

 private:
  DrainStream* s_;
};

struct Buffers;
struct BankOwner;

}  // namespace sat::kernel
