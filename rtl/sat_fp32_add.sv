// sat_fp32_add: s = x + y in IEEE 754 binary32, bit for bit what x86 SSE/AVX addition gives
// without FTZ/DAZ (the HLS C-model's plain `float` arithmetic):
//  - round to nearest, ties to even; subnormal inputs and results kept (gradual underflow);
//  - overflow to inf; an exact zero sum of operands of opposite signs is +0 (-0 + -0 = -0);
//  - inf + -inf = the default NaN 0xFFC00000;
//  - NaN: x if x is a NaN, else y, made quiet (x86: the first source operand wins); with
//    `y_first` the other way round (y if y is a NaN, else x). The choice matters only when both
//    operands are NaNs: it names which operand the C-model's compiled code made the first source.
// Combinational: alignment, add/subtract, normalisation and rounding in one path.
module sat_fp32_add (
    input  logic [31:0] x,
    input  logic [31:0] y,
    input  logic        y_first,  // NaN priority: 0 x's NaN wins, 1 y's
    output logic [31:0] s
);
  logic        x_nan, y_nan, x_inf, y_inf, swap;
  logic [31:0] hi;          // the operand of larger magnitude
  logic [30:0] lo;          // the magnitude of the other
  logic [7:0]  eb, es;         // effective exponents (1 for subnormals and zeros)
  logic [23:0] mb, ms;         // significands with the hidden bit
  logic [7:0]  d;              // exponent difference
  logic [4:0]  dsh;            // difference clamped to 27
  logic [53:0] ys_wide;        // {ms, 3'b0, 27'b0} >> dsh
  logic [26:0] xa, ya;         // {sig, guard, round, sticky}
  logic        sub;            // effective subtraction
  logic [27:0] sum;            // xa +/- ya (bit 27: carry)
  logic [4:0]  lz;             // leading zeros of sum[26:0]
  logic [4:0]  nsh;            // normalisation left shift, limited so the exponent stays >= 1
  logic [26:0] norm;           // normalised {sig, g, r, s}
  logic [8:0]  en;             // exponent after normalisation (>= 1)
  logic        round_up;
  logic [24:0] sig_r;          // rounded significand; bit 24 set on a carry out of rounding
  logic [9:0]  field;          // the result's exponent field: (en - 1) + hidden bit + 2 * carry

  assign x_nan = (x[30:23] == 8'hff) && (x[22:0] != 23'd0);
  assign y_nan = (y[30:23] == 8'hff) && (y[22:0] != 23'd0);
  assign x_inf = (x[30:23] == 8'hff) && (x[22:0] == 23'd0);
  assign y_inf = (y[30:23] == 8'hff) && (y[22:0] == 23'd0);

  assign swap = y[30:0] > x[30:0];
  assign hi = swap ? y : x;
  assign lo = swap ? x[30:0] : y[30:0];
  assign eb = (hi[30:23] == 8'd0) ? 8'd1 : hi[30:23];
  assign es = (lo[30:23] == 8'd0) ? 8'd1 : lo[30:23];
  assign mb = {hi[30:23] != 8'd0, hi[22:0]};
  assign ms = {lo[30:23] != 8'd0, lo[22:0]};
  assign d = eb - es;
  assign dsh = (d > 8'd27) ? 5'd27 : d[4:0];
  assign ys_wide = {ms, 3'd0, 27'd0} >> dsh;
  assign xa = {mb, 3'd0};
  assign ya = {ys_wide[53:28], ys_wide[27] | (|ys_wide[26:0])};
  assign sub = x[31] ^ y[31];
  assign sum = sub ? ({1'b0, xa} - {1'b0, ya}) : ({1'b0, xa} + {1'b0, ya});

  // Leading zeros of a 27-bit value (27 for zero).
  function automatic logic [4:0] lead_zeros(input logic [26:0] v);
    lead_zeros = 5'd27;
    for (int i = 0; i <= 26; i++) if (v[i]) lead_zeros = 5'(26 - i);
  endfunction

  assign lz = lead_zeros(sum[26:0]);
  // Without a carry: shift left by the leading zeros, but not below exponent 1 (subnormal result).
  assign nsh = ({4'd0, lz} < {1'b0, eb} - 9'd1) ? lz : 5'(eb - 8'd1);
  // With a carry: one place right, the bit shifted out joins the sticky bit.
  assign norm = sum[27] ? {sum[27:2], sum[1] | sum[0]} : sum[26:0] << nsh;
  assign en = sum[27] ? {1'b0, eb} + 9'd1 : {1'b0, eb} - {4'd0, nsh};

  assign round_up = norm[2] && (norm[1] || norm[0] || norm[3]);
  assign sig_r = {1'b0, norm[26:3]} + {24'd0, round_up};
  assign field = {1'b0, en} - 10'd1 + {9'd0, sig_r[23]} + {8'd0, sig_r[24], 1'b0};

  assign s = (x_nan && !(y_first && y_nan)) ? (x | 32'h0040_0000)
           : y_nan ? (y | 32'h0040_0000)
           : (x_inf && y_inf && sub) ? 32'hffc0_0000
           : x_inf ? x
           : y_inf ? y
           : (sum == 28'd0) ? {x[31] & y[31], 31'd0}
           : (field >= 10'd255) ? {hi[31], 8'hff, 23'd0}
           : {hi[31], field[7:0], sig_r[22:0]};  // on a rounding carry sig_r[22:0] is 0
endmodule
