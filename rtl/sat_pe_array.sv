// sat_pe_array: SAT's PE array (docs/rtl.md; the contract is docs/isa.md §6 and "Numerics", and
// hls/src/gemm_unit.cpp). ROWS x COLS sat_pe instances, each computing one output C[i][j] of a
// ROWS x COLS block of a GEMM tile, and the N:M activation selection in front of them.
//
// Row r takes the activation row i of its output (A[i][*]), column c the weight line j (its entries:
// dense B[j][e], or the kept values and in-group indices of an N:M line). All PEs share the entry
// sequence e = 0 .. E-1: entry e goes to lane e mod PE_LANES (sat_pe adds each lane's products in
// entry order), and its activation is A[i][pos(e)] with pos(e) = e (dense) or
// (e / n) * m + index(j, e) (N:M), as the C-model's GEMM unit forms it.
//
// The activations reach the array as a window: each cycle, row r presents WIN = PE_LANES *
// SELECT_WINDOW_RATIO consecutive elements of its A row, A[i][win_base .. win_base + WIN), and the
// columns present the entries entry_base .. entry_base + PE_LANES - 1 of their lines; both bases are
// outputs of the array (its sequencer below), which the operand reader follows. A PE lane picks its
// activation from its row's window with a WIN:1 multiplexer, selected by the weight's in-group index
// and the slot of the entry's group in the window: sel = slot * m + index (m a power of two, so a
// shift and an OR). Dense mode is the same path with groups of one element and no index (n = m = 1).
//
// A step is the PE_LANES entries entry_base + l. Its groups span from group (entry_base / n) to
// ((entry_base + PE_LANES - 1) / n); where they fit the window (every step of dense, 2:8, 1:4, 4:16,
// 2:4, 3:8, ...) the step takes one cycle. Where they do not (1:8, 2:16, 1:16, and the steps of
// 3:16 and 5:16 that touch one group more, docs/rtl.md) the step is taken in sub-steps, each the
// longest run of the step's remaining lanes whose groups fit a window that starts at the first
// one's group (the others add +0, which leaves a lane unchanged: lanes never hold -0 or a
// signalling NaN, docs/rtl.md). Every lane still adds its entries once each, in entry order, so the
// result is the C-model's bit for bit; the window bounds such settings to WIN elements of K a cycle
// (4x dense), as docs/isa.md §6 says.
//
// Protocol: `start` latches the mode (sparse, nm_n, nm_m) and E (`entries`, >= 1 as every GEMM
// has) and clears the PE lanes to +0; with `step` the same cycle takes the first (sub-)step, whose
// operands are entry 0 and window 0 (whatever entry_base and win_base, the previous computation's
// registered state, read in that cycle). A `start`
// may share its cycle with the previous computation's `finish`, so back to back a block costs its
// sub-steps and nothing more. Every later cycle with `step` while `busy` takes one (sub-)step with
// the operands presented at win_base / entry_base (a cycle without `step` holds everything). When
// the last step is taken `busy` falls; `finish` (with `accumulate`, `c_in`) in any later cycle,
// before the next computation's first step, reduces every PE and gives `out` the cycle after
// (out_valid). The cycles a computation takes are arch::gemm_block_substeps
// (arch/include/sat/arch/timing.hpp), which the simulator and the scheduler charge.
// The mode inputs must be what the GEMM unit accepts: m a supported M and 1 <= n <= m when sparse;
// an index >= m never reaches the array (LD_SPW refuses it), and only its low log2(m) bits are used.
//
// Parameters come from sat_config_pkg; ROWS and COLS may be overridden (the CI tests use 4 x 4).
module sat_pe_array #(
    parameter int ROWS = sat_config_pkg::PE_ROWS,
    parameter int COLS = sat_config_pkg::PE_COLS
) (
    input  logic                                                                   clk,
    input  logic                                                                   rst,         // synchronous, active high
    input  logic                                                                   start,       // new computation: latch the mode, lanes := +0
    input  logic                                                                   sparse,      // with start: N:M B operand (else dense)
    input  logic [$clog2(sat_config_pkg::MAX_M+1)-1:0]                             nm_n,        // with start, sparse: n
    input  logic [$clog2(sat_config_pkg::MAX_M+1)-1:0]                             nm_m,        // with start, sparse: m
    input  logic [$clog2(sat_config_pkg::MAX_TILE_K+1)-1:0]                        entries,     // with start: E
    input  logic                                                                   step,        // take this cycle's (sub-)step
    output logic                                                                   busy,        // steps remain
    output logic [$clog2(sat_config_pkg::MAX_TILE_K+1)-1:0]                        entry_base,  // first entry the columns present
    output logic [$clog2(sat_config_pkg::MAX_TILE_K+1)-1:0]                        win_base,    // first K element of the rows' window
    // Row r's window: element w (A[i][win_base + w]) at [16 * (r * WIN + w) +: 16], BF16.
    input  logic [ROWS*sat_config_pkg::PE_LANES*sat_config_pkg::SELECT_WINDOW_RATIO*16-1:0] act,
    // Column c's entries: entry entry_base + l at [16 * (c * PE_LANES + l) +: 16] (BF16 value) and
    // [INDEX_BITS * (c * PE_LANES + l) +: INDEX_BITS] (in-group index; dense: ignored).
    input  logic [COLS*sat_config_pkg::PE_LANES*16-1:0]                            wval,
    input  logic [COLS*sat_config_pkg::PE_LANES*sat_config_pkg::INDEX_BITS-1:0]    widx,
    input  logic                                                                   finish,      // reduce every PE, output the results
    input  logic                                                                   accumulate,  // with finish: out = c_in + sum
    input  logic [ROWS*COLS*32-1:0]                                                c_in,        // PE (r, c) at [32 * (r * COLS + c) +: 32]
    output logic                                                                   out_valid,
    output logic [ROWS*COLS*32-1:0]                                                out          // PE (r, c) at [32 * (r * COLS + c) +: 32]
);
  localparam int LANES = sat_config_pkg::PE_LANES;
  localparam int WIN = LANES * sat_config_pkg::SELECT_WINDOW_RATIO;
  localparam int IB = sat_config_pkg::INDEX_BITS;
  localparam int NB = $clog2(sat_config_pkg::MAX_M + 1);        // n, m, an entry's rank in its group
  localparam int EB = $clog2(sat_config_pkg::MAX_TILE_K + 1);   // entries, K positions, groups
  localparam int SB = $clog2(WIN);                               // a position in the window
  localparam int LB = $clog2(LANES);                             // a lane
  localparam int OB = $clog2(LANES + 1);                         // a group offset within a step
  localparam int MLB = $clog2($clog2(sat_config_pkg::MAX_M) + 1);  // log2 m

  // The selection is a shift by log2 m and needs a group to fit the window.
  if (sat_config_pkg::MAX_M > WIN || (sat_config_pkg::SUPPORTED_M_MASK & ~32'h00010116) != 0 ||
      (1 << IB) < sat_config_pkg::MAX_M) begin : g_supported_m_must_be_powers_of_two_within_the_window
    sat_pe_array_unsupported_m u_unsupported ();
  end

  function automatic logic [MLB-1:0] log2_of(input logic [NB-1:0] v);
    log2_of = '0;
    for (int b = 0; b < NB; b++) if (v[b]) log2_of = MLB'(b);
  endfunction

  // ---- the sequencer: which entries and which window each cycle ----------------------------------
  logic          busy_q;
  logic [NB-1:0] n_q;    // entries per group: n, or 1 (dense)
  logic [MLB-1:0] ml_q;  // log2 of the group's K extent: log2 m, or 0 (dense)
  logic [EB-1:0] e_q;    // E
  logic [EB-1:0] e0_q;   // first entry of the step
  logic [EB-1:0] g0_q;   // its group, e0 / n
  logic [NB-1:0] r0_q;   // its rank in the group, e0 mod n
  logic [LB-1:0] p_q;    // first lane of the step not taken yet

  // The state this cycle works from: in a `start` cycle the new computation's first step (entry 0,
  // window 0), so that the start cycle takes it and a block costs only its sub-steps.
  logic          busy_s;
  logic [NB-1:0] n_s;
  logic [MLB-1:0] ml_s;
  logic [EB-1:0] e_s, e0_s, g0_s;
  logic [NB-1:0] r0_s;
  logic [LB-1:0] p_s;
  always_comb begin : b_state
    busy_s = start ? entries != '0 : busy_q;
    n_s = start ? (sparse ? nm_n : NB'(1)) : n_q;
    ml_s = start ? (sparse ? log2_of(nm_m) : '0) : ml_q;
    e_s = start ? entries : e_q;
    e0_s = start ? '0 : e0_q;
    g0_s = start ? '0 : g0_q;
    r0_s = start ? '0 : r0_q;
    p_s = start ? '0 : p_q;
  end

  // Entry e0 + l is in group g0 + off[l]: counted along the lanes (n is any value 1 .. MAX_M, so
  // no divider); rem_next is the rank of entry e0 + LANES, the next step's r0.
  logic [NB-1:0] rem_next;
  logic [(LANES+1)*OB-1:0] off;
  always_comb begin : b_chain
    logic wrap;
    logic [NB-1:0] r;
    logic [OB-1:0] o;
    r = r0_s;
    o = '0;
    off[0+:OB] = o;
    for (int l = 0; l < LANES; l++) begin
      wrap = r + NB'(1) == n_s;
      r = wrap ? '0 : r + NB'(1);
      o = o + OB'(wrap);
      off[OB*(l+1)+:OB] = o;
    end
    rem_next = r;
  end

  // The window starts at the group of the first lane not taken; a lane fits when its whole group
  // lies in the window (slot < WIN / m); lanes past E need no activation and always fit.
  logic [OB-1:0] ob;
  logic [SB:0] win_groups;
  logic [LANES-1:0] valid, fits, take;
  logic [LANES*SB-1:0] slot;
  logic [LB-1:0] next_p;
  logic step_done;
  assign ob = off[OB*p_s+:OB];
  assign win_groups = (SB + 1)'(WIN) >> ml_s;
  for (genvar l = 0; l < LANES; l++) begin : g_fit
    logic [OB-1:0] rel;
    assign rel = off[OB*l+:OB] - ob;
    assign valid[l] = e0_s + EB'(l) < e_s;
    assign fits[l] = !valid[l] || (SB + 1)'(rel) < win_groups;
    assign slot[SB*l+:SB] = SB'(rel);
  end
  // This (sub-)step takes the run of fitting lanes from p on.
  always_comb begin : b_take
    logic run;
    run = 1'b1;
    next_p = '0;
    for (int l = 0; l < LANES; l++) begin
      if (LB'(l) >= p_s) begin
        run = run && fits[l];
        if (!run && next_p == '0) next_p = LB'(l);
      end
      take[l] = busy_s && LB'(l) >= p_s && run;
    end
    step_done = run;
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      busy_q <= 1'b0;
      n_q <= NB'(1);
      ml_q <= '0;
      e_q <= '0;
      e0_q <= '0;
      g0_q <= '0;
      r0_q <= '0;
      p_q <= '0;
    end else begin
      n_q <= n_s;
      ml_q <= ml_s;
      e_q <= e_s;
      if (step && busy_s && step_done) begin
        busy_q <= e0_s + EB'(LANES) < e_s;
        e0_q <= e0_s + EB'(LANES);
        g0_q <= g0_s + EB'(off[OB*LANES+:OB]);
        r0_q <= rem_next;
        p_q <= '0;
      end else begin
        busy_q <= busy_s;
        e0_q <= e0_s;
        g0_q <= g0_s;
        r0_q <= r0_s;
        p_q <= step && busy_s ? next_p : p_s;
      end
    end
  end

  // The window of the next cycle's (sub-)step, registered as the entry base is, so that no output
  // depends combinationally on an input: the next step's first group, or this step's first lane
  // not taken yet.
  logic [EB-1:0] win_q;
  logic [LB:0] next_lane;   // the lane whose group starts the next window (LANES: the next step's first)
  assign next_lane = step_done ? (LB + 1)'(LANES) : {1'b0, next_p};
  always_ff @(posedge clk) begin
    if (rst) win_q <= '0;
    else if (step && busy_s) win_q <= (g0_s + EB'(off[OB*next_lane+:OB])) << ml_s;
    else if (start) win_q <= '0;
  end

  assign busy = busy_q;
  assign entry_base = e0_q;
  assign win_base = win_q;

  // ---- the PEs and their activation multiplexers -------------------------------------------------
  logic [IB-1:0] idx_mask;  // the low log2 m bits of an index
  assign idx_mask = ~({IB{1'b1}} << ml_s);
  logic pe_step;
  assign pe_step = step && busy_s;
  logic [ROWS*COLS-1:0] pe_valid;

  for (genvar c = 0; c < COLS; c++) begin : g_col
    // Window position of each lane's activation, shared by the column's PEs.
    logic [LANES*SB-1:0] sel;
    for (genvar l = 0; l < LANES; l++) begin : g_sel
      logic [IB-1:0] idx;
      assign idx = widx[IB*(c*LANES+l)+:IB] & idx_mask;
      assign sel[SB*l+:SB] = (slot[SB*l+:SB] << ml_s) | SB'(idx);
    end
    for (genvar r = 0; r < ROWS; r++) begin : g_row
      logic [WIN*16-1:0] row_act;
      logic [LANES*16-1:0] a_sel;
      assign row_act = act[r*WIN*16+:WIN*16];
      for (genvar l = 0; l < LANES; l++) begin : g_mux
        assign a_sel[16*l+:16] = row_act[16*sel[SB*l+:SB]+:16];
      end
      sat_pe u_pe (
          .clk(clk),
          .rst(rst),
          .start(start),
          .step(pe_step),
          .lane_valid(take & valid),
          .act(a_sel),
          .wgt(wval[c*LANES*16+:LANES*16]),
          .finish(finish),
          .accumulate(accumulate),
          .c_in(c_in[32*(r*COLS+c)+:32]),
          .out_valid(pe_valid[r*COLS+c]),
          .out(out[32*(r*COLS+c)+:32])
      );
    end
  end
  assign out_valid = &pe_valid;
endmodule
