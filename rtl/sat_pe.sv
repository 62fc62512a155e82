// sat_pe: one processing element of SAT's PE array (docs/rtl.md; the contract is docs/isa.md,
// "Numerics (bit-exact contract shared with the RTL)", and hls/src/gemm_unit.cpp).
//
// PE_LANES (sat_config_pkg, 8) FP32 lane accumulators. Each cycle with `step` the PE takes
// PE_LANES (activation, weight, valid) triples, lane l adding the product of its pair (sat_bf16_mul)
// to its accumulator (sat_fp32_add); an invalid slot adds +0, as the C-model's slots past E do (this
// turns a -0 accumulator into +0). `start` clears every lane to +0 before this cycle's step, if any.
// `finish` reduces the lanes as ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)) and outputs the sum, or
// C + sum with `accumulate` (C = `c_in`), registered: `out` is valid (`out_valid`) in the cycle after
// `finish`. `finish` sees the accumulators as the previous cycle left them, so it comes at least one
// cycle after the last step; it may share a cycle with the next computation's `start` and first step.
//
// NaNs: every NaN result is written as sat_config_pkg::CANONICAL_NAN, as the C-model writes it
// (canonical_nan, arch/include/sat/arch/bf16_bits.hpp). Which payload an adder passes on where two
// NaNs meet is then never visible, so the adders below take their operands in any order.
module sat_pe (
    input  logic                                   clk,
    input  logic                                   rst,         // synchronous, active high
    input  logic                                   start,       // lanes := +0 (before this cycle's step)
    input  logic                                   step,        // a step of PE_LANES entries
    input  logic [sat_config_pkg::PE_LANES-1:0]    lane_valid,  // entry present (else the lane adds +0)
    input  logic [sat_config_pkg::PE_LANES*16-1:0] act,         // BF16 activation of lane l at [16l +: 16]
    input  logic [sat_config_pkg::PE_LANES*16-1:0] wgt,         // BF16 weight of lane l at [16l +: 16]
    input  logic                                   finish,      // reduce the lanes, output the result
    input  logic                                   accumulate,  // with finish: out = c_in + sum
    input  logic [31:0]                            c_in,        // FP32 C value read with finish
    output logic                                   out_valid,
    output logic [31:0]                            out
);
  localparam int LANES = sat_config_pkg::PE_LANES;

  // The reduction tree below is written for 8 lanes (as the C-model's lane_tree is).
  if (LANES != 8) begin : g_lanes_must_be_8
    sat_pe_supports_only_8_lanes u_unsupported ();
  end

  logic [LANES*32-1:0] acc;  // lane l at [32l +: 32]

  for (genvar l = 0; l < LANES; l++) begin : g_lane
    logic [31:0] prod, base, sum;
    sat_bf16_mul u_mul (
        .x(wgt[16*l+:16]),
        .y(act[16*l+:16]),
        .p(prod)
    );
    assign base = start ? 32'd0 : acc[32*l+:32];
    sat_fp32_add u_add (
        .x(lane_valid[l] ? prod : 32'd0),
        .y(base),
        .y_first(1'b0),
        .s(sum)
    );
    always_ff @(posedge clk) begin
      if (rst) acc[32*l+:32] <= 32'd0;
      else if (step) acc[32*l+:32] <= sum;
      else if (start) acc[32*l+:32] <= 32'd0;
    end
  end

  // ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)), then C + sum with accumulate.
  logic [31:0] s01, s23, s45, s67, s0123, s4567, total, with_c, result;
  sat_fp32_add u_t01 (.x(acc[0*32+:32]), .y(acc[1*32+:32]), .y_first(1'b0), .s(s01));
  sat_fp32_add u_t23 (.x(acc[2*32+:32]), .y(acc[3*32+:32]), .y_first(1'b0), .s(s23));
  sat_fp32_add u_t45 (.x(acc[4*32+:32]), .y(acc[5*32+:32]), .y_first(1'b0), .s(s45));
  sat_fp32_add u_t67 (.x(acc[6*32+:32]), .y(acc[7*32+:32]), .y_first(1'b0), .s(s67));
  sat_fp32_add u_t0123 (.x(s01), .y(s23), .y_first(1'b0), .s(s0123));
  sat_fp32_add u_t4567 (.x(s45), .y(s67), .y_first(1'b0), .s(s4567));
  sat_fp32_add u_tall (.x(s0123), .y(s4567), .y_first(1'b0), .s(total));
  sat_fp32_add u_c (.x(c_in), .y(total), .y_first(1'b0), .s(with_c));
  assign result = accumulate ? with_c : total;

  always_ff @(posedge clk) begin
    if (rst) begin
      out_valid <= 1'b0;
      out <= 32'd0;
    end else begin
      out_valid <= finish;
      if (finish) out <= result[30:0] > 31'h7f800000 ? sat_config_pkg::CANONICAL_NAN : result;
    end
  end
endmodule
