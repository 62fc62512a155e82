#pragma once
// The synthesised kernel's channels between processes (docs/hls-dataflow.md): how a unit reaches
// DRAM (request/response streams to the arbiter of each channel), how the load unit's engines
// reach the operand banks (fill words to the GEMM process, which owns every bank), and how the
// store unit reads an accumulator tile (a drain stream from the same process). The execute
// functions see these only through DdrIn/DdrOut, BankOut/IdxOut and CTileIn (kernel.hpp), which in
// C-simulation are plain pointers.
//
// The DRAM links carry bursts: a request names a run of consecutive halfwords, data move as bus
// beats, and the accessors that the execute functions use for consecutive addresses (DdrReader,
// DdrWriter; pointer walks in C-simulation, kernel.hpp) keep several runs in flight.
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
// Halfwords of one bus beat, and of the longest request (runs are cut at multiples of it).
inline constexpr int kBeatHalfwords = arch::kDdrBusBits / 16;
inline constexpr uint64_t kRunHalfwords = static_cast<uint64_t>(arch::kDdrRunBeats) * kBeatHalfwords;
static_assert(kBeatHalfwords <= 64, "a write beat's halfword mask is one uint64_t");
static_assert(arch::kDdrRunBeats <= arch::kArbLinkDepth, "a read request must fit its data link");
// Write acknowledgements a client may leave unread per channel: two runs per write link. The unit
// takes one before it would exceed this, so an arbiter never waits on a full acknowledgement link.
inline constexpr int kAckDepth = 2 * arch::kDdrWriteSlots;

// ---- DRAM: requests, beats back, beats out, acknowledgements ---------------------------------------
// A request covers `len` consecutive halfwords from `offset`; the arbiter moves the aligned beats
// that hold them, one a cycle: to the read link `slot` of the client, or from its write link `slot`,
// whose beats (with a mask of the halfwords to write) are all in the link before the request is
// sent. A write's acknowledgement follows its last beat.
enum : uint8_t { kReqRead = 0, kReqWrite = 1, kReqStop = 2 };
struct DdrReq {
  uint64_t offset;   // halfwords into the channel
  uint32_t len;      // halfwords, at most kRunHalfwords, within one aligned run
  uint8_t kind;
  uint8_t slot;
};
struct DdrBeat {
  uint16_t h[kBeatHalfwords];
};
struct DdrWBeat {
  uint16_t h[kBeatHalfwords];
  uint64_t mask;   // bit j: write h[j]
};
using DdrReqStream = ::hls::stream<DdrReq, arch::kArbLinkDepth>;
using DdrBeatStream = ::hls::stream<DdrBeat, arch::kArbLinkDepth>;
using DdrWBeatStream = ::hls::stream<DdrWBeat, arch::kArbLinkDepth>;
using DdrAckStream = ::hls::stream<uint8_t, kAckDepth>;
// Beats of the aligned words that hold halfwords [offset, offset + len).
inline uint32_t beats_of(uint64_t offset, uint64_t len) {
  return static_cast<uint32_t>((offset % kBeatHalfwords + len + kBeatHalfwords - 1) / kBeatHalfwords);
}

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
using FillStream = ::hls::stream<FillWord, arch::kFillLinkDepth>;

// ---- Accumulators: drain requests, store -> GEMM process; values back ----------------------------------
struct DrainReq {
  uint32_t count;   // elements of the tile, row-major from index 0
  uint8_t bank;
  bool stop;        // the store unit has ended
};
using DrainReqStream = ::hls::stream<DrainReq, 2>;
using DrainStream = ::hls::stream<float, arch::kDrainLinkDepth>;

// One DDR channel as a client reaches it: its request link, its read and write data links (slot 0
// for single accesses, the others for sequential readers and writers) and its acknowledgements.
struct DdrPort {
  DdrReqStream* req = nullptr;
  DdrBeatStream* rsp = nullptr;      // [kDdrReadSlots]
  DdrWBeatStream* wdata = nullptr;   // [kDdrWriteSlots]
  DdrAckStream* ack = nullptr;
  uint16_t acks_due = 0;             // write requests sent whose acknowledgement is not yet read
};

// What one process holds of the channels above; members that a process does not use stay null.
struct Client {
  DdrPort ddr[arch::kDdrChannels];
  FillStream* fill = nullptr;         // load engine
  FillWord pending{};                 // load engine: the fill word being packed
  DrainReqStream* drain_req = nullptr;   // store
  DrainStream* drain = nullptr;          // store
};

// Sends a write request whose beats are in the link. Its acknowledgement is read later (ddr_fence),
// or now for the oldest one when kAckDepth are due, which never waits long: those writes have their
// data and nothing the arbiter serves before them waits on this unit.
inline void post_write(DdrPort& p, const DdrReq& q) {
  if (p.acks_due == kAckDepth) {
    (void)p.ack->read();
    --p.acks_due;
  }
  p.req->write(q);
  ++p.acks_due;
}
// Every write this client sent has landed. A unit calls it before it signals a token: the ISA's only
// synchronisation, so that any unit behind the token sees the data.
inline void ddr_fence(Client& c) {
  for (int ch = 0; ch < arch::kDdrChannels; ++ch) {
  FENCE:
    while (c.ddr[ch].acks_due != 0) {
#pragma HLS LOOP_TRIPCOUNT min = 0 max = kAckDepth
      (void)c.ddr[ch].ack->read();
      --c.ddr[ch].acks_due;
    }
  }
}

// One halfword of DRAM, for the accesses that do not walk consecutive addresses (docs/hls-
// dataflow.md lists them): a read is a one-halfword request and a wait for its beat on slot 0; a
// write is a one-beat posted write on slot 0. The client's requests are served in order, so a read
// after a write to the same halfword sees it.
class DdrRef {
 public:
  DdrRef(Client* c, uint32_t ch, uint64_t off) : c_(c), ch_(ch), off_(off) {}
  operator uint16_t() const {
    DdrPort& p = c_->ddr[ch_];
    p.req->write(DdrReq{off_, 1, kReqRead, 0});
    const DdrBeat b = p.rsp[0].read();
    return b.h[off_ % kBeatHalfwords];
  }
  const DdrRef& operator=(uint16_t v) const {
    DdrPort& p = c_->ddr[ch_];
    DdrWBeat w{};
    w.h[off_ % kBeatHalfwords] = v;
    w.mask = uint64_t{1} << (off_ % kBeatHalfwords);
    p.wdata[0].write(w);
    post_write(p, DdrReq{off_, 1, kReqWrite, 0});
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
  DdrPort& port() const { return c_->ddr[ch_]; }
  uint64_t offset() const { return off_; }

 private:
  Client* c_ = nullptr;
  uint32_t ch_ = 0;
  uint64_t off_ = 0;
};
using DdrIn = DdrPtr;
using DdrOut = DdrPtr;

// The halfwords [p, p + n) in order, through read link kSlot. The address side runs ahead of the
// data side by up to kArbLinkDepth beats: a run is requested as soon as the link has room for all
// of its beats (credits), so the arbiter can always deliver them and the link streams a beat a
// cycle. Ending early (an error) reads the beats still due, so the link is empty for the next user.
template <int kSlot>
class DdrReader {
  static_assert(kSlot > 0 && kSlot < arch::kDdrReadSlots, "slot 0 is for single accesses");

 public:
  DdrReader(DdrIn p, uint64_t n)
      : port_(n != 0 ? &p.port() : nullptr), off_(p.offset()), left_(n), pos_(p.offset() % kBeatHalfwords) {
    request();
    request();
  }
  DdrReader(const DdrReader&) = delete;
  DdrReader& operator=(const DdrReader&) = delete;
  ~DdrReader() {
  READER_DRAIN:
    while (due_ != 0) {
#pragma HLS LOOP_TRIPCOUNT min = 0 max = arch::kArbLinkDepth
      (void)port_->rsp[kSlot].read();
      --due_;
    }
  }
  uint16_t next() {
    if (!have_) {
      request();
      beat_ = port_->rsp[kSlot].read();
      --due_;
      have_ = true;
    }
    const uint16_t v = beat_.h[pos_];
    if (++pos_ == kBeatHalfwords) {
      pos_ = 0;
      have_ = false;
    }
    return v;
  }

 private:
  // At most one request a call, cut at the next aligned run boundary, when its beats fit the link.
  void request() {
    if (left_ == 0) return;
    const uint64_t room = kRunHalfwords - off_ % kRunHalfwords;
    const uint64_t len = left_ < room ? left_ : room;
    const uint32_t beats = beats_of(off_, len);
    if (due_ + beats > static_cast<uint32_t>(arch::kArbLinkDepth)) return;
    port_->req->write(DdrReq{off_, static_cast<uint32_t>(len), kReqRead, static_cast<uint8_t>(kSlot)});
    due_ += beats;
    off_ += len;
    left_ -= len;
  }

  DdrPort* port_;
  uint64_t off_;    // next halfword to request
  uint64_t left_;   // halfwords not yet requested
  uint32_t due_ = 0;   // beats requested and not yet read
  uint32_t pos_;
  bool have_ = false;
  DdrBeat beat_{};
};

// Takes the halfwords [p, p + n) in order, through write link kSlot: beats go into the link as they
// fill, and a run's request follows its last beat, so the arbiter never waits for data. The
// destructor sends what is left (a partial beat and run). A unit calls ddr_fence before it signals.
template <int kSlot>
class DdrWriter {
  static_assert(kSlot > 0 && kSlot < arch::kDdrWriteSlots, "slot 0 is for single accesses");

 public:
  DdrWriter(DdrOut p, uint64_t n)
      : port_(n != 0 ? &p.port() : nullptr), run_off_(p.offset()), left_(n), pos_(p.offset() % kBeatHalfwords) {
    start_run();
  }
  DdrWriter(const DdrWriter&) = delete;
  DdrWriter& operator=(const DdrWriter&) = delete;
  ~DdrWriter() {
    if (mask_ != 0) write_beat();
    if (run_put_ != 0) post_write(*port_, DdrReq{run_off_, run_put_, kReqWrite, static_cast<uint8_t>(kSlot)});
  }
  void put(uint16_t v) {
    beat_[pos_] = v;
    mask_ |= uint64_t{1} << pos_;
    ++run_put_;
    const bool run_end = run_put_ == run_len_;
    if (++pos_ == kBeatHalfwords || run_end) {
      write_beat();
    }
    if (run_end) {
      post_write(*port_, DdrReq{run_off_, run_len_, kReqWrite, static_cast<uint8_t>(kSlot)});
      run_off_ += run_len_;
      start_run();
    }
  }

 private:
  void write_beat() {
    DdrWBeat w;
    for (int j = 0; j < kBeatHalfwords; ++j) {
#pragma HLS UNROLL
      w.h[j] = beat_[j];
    }
    w.mask = mask_;
    port_->wdata[kSlot].write(w);
    mask_ = 0;
    pos_ = 0;
  }
  void start_run() {
    const uint64_t room = kRunHalfwords - run_off_ % kRunHalfwords;
    run_len_ = static_cast<uint32_t>(left_ < room ? left_ : room);
    left_ -= run_len_;
    run_put_ = 0;
  }

  DdrPort* port_;
  uint64_t run_off_;   // first halfword of the current run
  uint64_t left_;      // halfwords after the current run
  uint32_t run_len_ = 0, run_put_ = 0;
  uint32_t pos_;
  uint64_t mask_ = 0;
  uint16_t beat_[kBeatHalfwords] = {};
};

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
