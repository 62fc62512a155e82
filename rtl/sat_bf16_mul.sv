// sat_bf16_mul: the product of two BF16 values as an FP32 value, bit for bit what the HLS C-model
// computes with `bf16_bits_to_f32(x) * bf16_bits_to_f32(y)` on x86 (SSE/AVX, no FTZ/DAZ):
//  - a BF16 subnormal input reads as a zero of its sign (arch/include/sat/arch/bf16_bits.hpp);
//  - NaN: the first NaN of (x, y) in that order, made quiet (x86 rule: the first source operand
//    wins); inf * 0 = the default NaN 0xFFC00000;
//  - finite: the 16-bit significand product is exact in FP32 unless the exponent leaves the range:
//    overflow gives inf, a product below 2^-126 is rounded (nearest, ties to even) to a subnormal
//    or to a zero of the product's sign (gradual underflow).
// Combinational. Which operand is "first" matters only when both are NaN (see docs/rtl.md).
module sat_bf16_mul (
    input  logic [15:0] x,
    input  logic [15:0] y,
    output logic [31:0] p
);
  logic       sx, sy, sp;
  logic [7:0] ex, ey;
  logic [6:0] mx, my;
  logic       x_nan, y_nan, x_inf, y_inf, x_zero, y_zero;
  logic [15:0] prod;           // {1.mx} * {1.my}, in [2^14, 2^16)
  logic [9:0]  e_biased;       // signed 10-bit: biased exponent of the normalised product
  logic [22:0] frac;           // fraction of the normalised product (15 significant bits)
  logic [23:0] sig;            // {1, frac}
  logic [9:0]  shift;          // right shift for a subnormal result, 1 - e_biased
  logic [4:0]  sh;             // shift clamped to 26
  logic [49:0] wide;           // {sig, 26'b0} >> sh
  logic [23:0] sub_m;          // subnormal significand before rounding
  logic        guard, sticky, round_up;
  logic [24:0] sub_r;          // rounded; 2^23 means the smallest normal

  assign sx = x[15];
  assign sy = y[15];
  assign ex = x[14:7];
  assign ey = y[14:7];
  assign mx = x[6:0];
  assign my = y[6:0];
  assign sp = sx ^ sy;
  assign x_nan = (ex == 8'hff) && (mx != 7'd0);
  assign y_nan = (ey == 8'hff) && (my != 7'd0);
  assign x_inf = (ex == 8'hff) && (mx == 7'd0);
  assign y_inf = (ey == 8'hff) && (my == 7'd0);
  assign x_zero = (ex == 8'd0);  // zero or subnormal: read as zero
  assign y_zero = (ey == 8'd0);

  assign prod = {8'd0, 1'b1, mx} * {8'd0, 1'b1, my};
  assign e_biased = {2'b00, ex} + {2'b00, ey} - 10'd127 + {9'd0, prod[15]};
  assign frac = prod[15] ? {prod[14:0], 8'd0} : {prod[13:0], 9'd0};
  assign sig = {1'b1, frac};
  assign shift = 10'd1 - e_biased;
  assign sh = ($signed(shift) > 10'sd26) ? 5'd26 : shift[4:0];
  assign wide = {sig, 26'd0} >> sh;
  assign sub_m = wide[49:26];
  assign guard = wide[25];
  assign sticky = |wide[24:0];
  assign round_up = guard && (sticky || sub_m[0]);
  assign sub_r = {1'b0, sub_m} + {24'd0, round_up};

  assign p = x_nan ? ({x, 16'd0} | 32'h0040_0000)
           : y_nan ? ({y, 16'd0} | 32'h0040_0000)
           : ((x_inf && y_zero) || (y_inf && x_zero)) ? 32'hffc0_0000
           : (x_inf || y_inf) ? {sp, 8'hff, 23'd0}
           : (x_zero || y_zero) ? {sp, 31'd0}
           : ($signed(e_biased) >= 10'sd255) ? {sp, 8'hff, 23'd0}
           : ($signed(e_biased) >= 10'sd1) ? {sp, e_biased[7:0], frac}
           : {sp, 6'd0, sub_r};  // sub_r[23] set: the smallest normal (exponent field 1)
endmodule
