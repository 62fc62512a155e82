// sat_f32_to_bf16: FP32 to BF16 as every implementation converts (DESIGN §4;
// arch/include/sat/arch/bf16_bits.hpp, f32_to_bf16_bits): round to nearest, ties to even; a
// subnormal or zero becomes a zero of its sign; inf stays inf; a NaN keeps its sign and upper
// payload bits and is made quiet (bit 6 set) so that truncation never turns it into inf.
// Rounding may carry into the exponent, up to inf. Combinational.
module sat_f32_to_bf16 (
    input  logic [31:0] f,
    output logic [15:0] b
);
  // f + 0x7fff + f[16] carries into bit 16 exactly when the low half is above one half, or one
  // half with the kept part odd.
  logic up;
  assign up = f[15] && (f[14:0] != 15'd0 || f[16]);
  assign b = f[30:23] == 8'hff ? f[31:16] | {9'd0, f[22:0] != 23'd0, 6'd0}
           : f[30:23] == 8'h00 ? {f[31], 15'd0}
           : f[31:16] + {15'd0, up};
endmodule
