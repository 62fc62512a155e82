// sat_nm_select: the N:M selection and compression unit (docs/rtl.md): one group of m FP32 master
// weights a cycle in, its n kept values (BF16) and in-group indices out, in the layout the HLS
// kernel writes (PGEN b1, LD_SPW b0; docs/nm-format.md): the kept entries in ascending in-group
// index, entry j of the group at slot j.
//
// The rule is nm_keep_masks of arch/include/sat/arch/nm_select.hpp (DESIGN §3): element i is kept
// when fewer than n others beat it, j beating i if |v_j| > |v_i|, or |v_j| == |v_i| and j < i
// (ties go to the lower index). Magnitudes compare as the bit patterns with the sign cleared
// (nm_rank_bits), so a NaN ranks above inf (and NaNs among themselves by payload), and +0 ties -0.
// As in the C++, each pair (j < i) is compared once and every element counts how many beat it;
// with n >= m every element is kept. Values are converted as f32_to_bf16_bits (sat_f32_to_bf16).
//
// Direction: the unit ranks the group on its input, whatever it is. Along K (W_F, PGEN b0 = 0)
// the feeder presents m consecutive elements of a master row, W[l][g*m + i]; along Cout (W_B,
// PGEN b0 = 1) m elements of a column, W[g*m + i][l] (PGEN's block buffer or a strided read). Either
// way the output is line l's group g: entries (l*groups + g)*n + j, j < n, of the compressed form.
//
// Ports: element i at v[32i +: 32] (i < m; elements at and past m are ignored), with nm_n / nm_m
// (m a supported M, 1 <= n <= m). Registered: the cycle after in_valid, out_valid with `keep` (bit
// i: element i kept), `val` (entry j at [16j +: 16]) and `idx` (entry j at [INDEX_BITS*j +:
// INDEX_BITS]); slots j >= n are 0. One group a cycle.
module sat_nm_select (
    input  logic                                          clk,
    input  logic                                          rst,       // synchronous, active high
    input  logic                                          in_valid,
    input  logic [$clog2(sat_config_pkg::MAX_M+1)-1:0]    nm_n,
    input  logic [$clog2(sat_config_pkg::MAX_M+1)-1:0]    nm_m,
    input  logic [sat_config_pkg::MAX_M*32-1:0]           v,
    output logic                                          out_valid,
    output logic [sat_config_pkg::MAX_M-1:0]              keep,
    output logic [sat_config_pkg::MAX_M*16-1:0]           val,
    output logic [sat_config_pkg::MAX_M*sat_config_pkg::INDEX_BITS-1:0] idx
);
  localparam int M = sat_config_pkg::MAX_M;
  localparam int IB = sat_config_pkg::INDEX_BITS;
  localparam int NB = $clog2(M + 1);

  if ((1 << IB) < M) begin : g_indices_must_hold_every_m
    sat_nm_select_index_too_narrow u_unsupported ();
  end

  // j_wins[j*M + i], j < i: |v_j| >= |v_i| (j beats i, else i beats j).
  logic [M*M-1:0] j_wins;
  logic [M*16-1:0] bf;  // element i as BF16
  for (genvar i = 0; i < M; i++) begin : g_elem
    for (genvar j = 0; j < M; j++) begin : g_pair
      if (j < i) begin : g_cmp
        assign j_wins[j*M+i] = v[32*j+:31] >= v[32*i+:31];
      end else begin : g_none
        assign j_wins[j*M+i] = 1'b0;
      end
    end
    sat_f32_to_bf16 u_bf16 (
        .f(v[32*i+:32]),
        .b(bf[16*i+:16])
    );
  end

  logic [M-1:0] keep_c;
  logic [M*16-1:0] val_c;
  logic [M*IB-1:0] idx_c;
  always_comb begin : b_select
    logic [NB-1:0] beaten, slot;
    for (int i = 0; i < M; i++) begin
      beaten = '0;
      for (int j = 0; j < M; j++) begin
        if (NB'(j) < nm_m) begin
          if (j < i) beaten = beaten + NB'(j_wins[j*M+i]);
          if (j > i) beaten = beaten + NB'(!j_wins[i*M+j]);
        end
      end
      keep_c[i] = NB'(i) < nm_m && beaten < nm_n;
    end
    // Compression: the kept elements in ascending index, entry j at slot j.
    val_c = '0;
    idx_c = '0;
    slot = '0;
    for (int i = 0; i < M; i++) begin
      if (keep_c[i]) begin
        val_c[16*slot+:16] = bf[16*i+:16];
        idx_c[IB*slot+:IB] = IB'(i);
        slot = slot + NB'(1);
      end
    end
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      out_valid <= 1'b0;
      keep <= '0;
      val <= '0;
      idx <= '0;
    end else begin
      out_valid <= in_valid;
      if (in_valid) begin
        keep <= keep_c;
        val <= val_c;
        idx <= idx_c;
      end
    end
  end
endmodule
