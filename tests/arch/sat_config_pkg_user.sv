// A module that reads the generated configuration package (sat_config_pkg.sv) the way the RTL does,
// so that Verilator, Icarus Verilog and yosys can each be shown to take the package: the test
// lints and elaborates the two files together and yosys synthesises this top.
module sat_config_pkg_user (
    output logic [31:0] interface_version,
    output logic [31:0] pe_count,
    output logic [31:0] supported_m_mask,
    output logic [7:0]  op_gemm
);
  assign interface_version = sat_config_pkg::INTERFACE_VERSION;
  assign pe_count = 32'(sat_config_pkg::PE_ROWS * sat_config_pkg::PE_COLS * sat_config_pkg::PE_LANES);
  assign supported_m_mask = sat_config_pkg::SUPPORTED_M_MASK;
  assign op_gemm = sat_config_pkg::OP_GEMM;
endmodule
