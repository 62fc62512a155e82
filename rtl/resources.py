#!/usr/bin/env python3
"""Resource estimate of the RTL blocks from yosys (issue 13 item 4; docs/rtl.md, "Resources").

Runs `synth_xilinx -family xcup -noiopad` (hierarchy kept) then `stat -tech xilinx` on
  - sat_pe_array at SMALL x SMALL PEs (default 2 x 2): one PE's cells (sat_pe with its multipliers
    and adders, the same module at every size) and the array's own logic (the step sequencer and
    the activation multiplexers) at that size,
  - sat_nm_select (one selection unit),
and prints LUT, FF, DSP48E2 and BRAM36 against the XCVU9P's budget (sim/study's kXcvu9p, read from
its header): the PEs scaled to the configuration's PE_ROWS x PE_COLS exactly (identical instances),
the array's own logic as measured at the small size, NOT scaled: yosys/abc fold the computed select
(slot << log2 m | index) into the multiplexer trees, which grows faster than the number of PEs
(docs/rtl.md), so no linear scaling of it would be honest.

Limits (printed with the table): yosys' generic Xilinx mapping, no timing constraints, no
retiming or placement, the blocks combinational as written (not pipelined for 200 MHz), hierarchy
kept (no optimisation across a PE's boundary); the operand banks, the load/store paths and every
other unit of the kernel are not RTL and are not counted.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile


def pkg_int(pkg_text, name):
    m = re.search(r"localparam int %s = (\d+);" % name, pkg_text)
    if not m:
        sys.exit("resources.py: %s not in the package" % name)
    return int(m.group(1))


def device_budget(header):
    # sim/study/include/sat_sim_study/resources.hpp: kXcvu9p{"XCVU9P", dsp, lut, ff, bram36, uram}
    text = open(header).read()
    m = re.search(r'kXcvu9p\{"(\w+)",\s*(\d+),\s*(\d+),\s*(\d+),\s*(\d+),\s*(\d+)\}', text)
    if not m:
        sys.exit("resources.py: kXcvu9p not found in " + header)
    name, dsp, lut, ff, bram, _uram = m.groups()
    return name, {"DSP": int(dsp), "LUT": int(lut), "FF": int(ff), "BRAM36": int(bram)}


def count(cells):
    """Cell counts of `stat -tech xilinx` folded into the budget's classes."""
    out = {"LUT": 0, "FF": 0, "DSP": 0, "BRAM36": 0.0, "CARRY": 0, "MUXF": 0, "LUTRAM": 0}
    for cell, n in cells.items():
        if re.fullmatch(r"LUT[1-6]", cell):
            out["LUT"] += n
        elif re.fullmatch(r"FD[RSCP]E(_1)?", cell):
            out["FF"] += n
        elif cell.startswith("DSP48"):
            out["DSP"] += n
        elif cell == "RAMB36E2":
            out["BRAM36"] += n
        elif cell == "RAMB18E2":
            out["BRAM36"] += n / 2
        elif cell.startswith("CARRY"):
            out["CARRY"] += n
        elif cell.startswith("MUXF"):
            out["MUXF"] += n
        elif cell.startswith("RAM") and cell[3:5] in ("16", "32", "64", "12", "25"):
            out["LUTRAM"] += n
    return out


def run_yosys(yosys, script, log):
    with tempfile.NamedTemporaryFile("w", suffix=".ys", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        r = subprocess.run([yosys, "-q", "-l", log, "-s", path], capture_output=True, text=True)
    finally:
        os.unlink(path)
    if r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        sys.exit("resources.py: yosys failed (log: %s)" % log)


def parse_stat(path, module, fallback=None):
    """Cell counts from a `tee -o path stat -tech xilinx` file: `module`'s own section, or with
    module "design hierarchy" the totals of the top with its submodules."""
    text = open(path).read()
    sections = re.split(r"^=== (.+?) ===$", text, flags=re.M)
    chosen = None
    for name, body in zip(sections[1::2], sections[2::2]):
        if name == module:
            chosen = body
    if chosen is None and fallback is not None:
        return parse_stat(path, fallback)
    if chosen is None:
        sys.exit("resources.py: no statistics for " + module)
    cells = {}
    after = chosen.split("Number of cells:", 1)[1]
    for line in after.splitlines()[1:]:
        m = re.match(r"\s+(\S+)\s+(\d+)$", line)
        if not m:
            if line.strip() == "":
                continue
            break
        cells[m.group(1)] = int(m.group(2))
    return cells


def synth(yosys, work, tag, reads, top, pre=""):
    stat = os.path.join(work, tag + ".stat")
    script = reads + pre + (
        "synth_xilinx -family xcup -noiopad -top %s\n"
        "tee -q -o %s stat -tech xilinx\n" % (top, stat))
    run_yosys(yosys, script, os.path.join(work, tag + ".log"))
    return stat


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--yosys", default="yosys")
    ap.add_argument("--pkg", required=True, help="<build>/arch/sat_config_pkg.sv")
    ap.add_argument("--rtl", required=True, help="the rtl/ directory")
    ap.add_argument("--device", required=True, help="sim/study/include/sat_sim_study/resources.hpp")
    ap.add_argument("--work", required=True, help="directory for the logs and the report")
    ap.add_argument("--small", type=int, default=2, help="PE rows and columns of the synthesised array")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    pkg_text = open(a.pkg).read()
    rows, cols = pkg_int(pkg_text, "PE_ROWS"), pkg_int(pkg_text, "PE_COLS")
    lanes = pkg_int(pkg_text, "PE_LANES")
    dev_name, budget = device_budget(a.device)
    r = lambda *f: " ".join([a.pkg] + [os.path.join(a.rtl, x) for x in f])

    small = a.small
    st = synth(a.yosys, a.work, "array", "read_verilog -sv %s\n" % r("sat_bf16_mul.sv", "sat_fp32_add.sv", "sat_pe.sv",
                                                                    "sat_pe_array.sv"),
               "sat_pe_array", "chparam -set ROWS %d -set COLS %d sat_pe_array\n" % (small, small))
    whole = count(parse_stat(st, "design hierarchy"))
    own = count(parse_stat(st, "sat_pe_array"))
    keys = ["LUT", "FF", "DSP", "BRAM36", "CARRY", "MUXF"]
    pe = {k: (whole[k] - own[k]) / (small * small) for k in keys}
    st = synth(a.yosys, a.work, "nm_select", "read_verilog -sv %s\n" % r("sat_f32_to_bf16.sv", "sat_nm_select.sv"),
               "sat_nm_select")
    nm = count(parse_stat(st, "design hierarchy", "sat_nm_select"))

    npe = rows * cols
    pes = {k: npe * pe[k] for k in keys}
    total = {k: pes[k] + nm[k] for k in keys}

    lines = []
    p = lines.append
    p("RTL resource estimate (yosys synth_xilinx -family xcup; rtl/resources.py) for the %s" % dev_name)
    p("PE array %d x %d x %d lanes, one N:M selection unit (one group of MAX_M a cycle)" % (rows, cols, lanes))
    p("")
    p("  %-40s %10s %10s %8s %8s %8s %8s" % ("block", "LUT", "FF", "DSP48E2", "BRAM36", "CARRY", "MUXF"))
    row = lambda name, v: p("  %-40s %10.0f %10.0f %8.0f %8.1f %8.0f %8.0f" % ((name,) + tuple(v[k] for k in keys)))
    row("sat_pe (one PE)", pe)
    row("%d PEs" % npe, pes)
    row("sat_nm_select (one unit)", nm)
    row("total (PEs + selection unit)", total)
    p("  %-40s %10d %10d %8d %8d" % (dev_name, budget["LUT"], budget["FF"], budget["DSP"], budget["BRAM36"]))
    p("  %-40s %9.1f%% %9.1f%% %7.1f%% %7.1f%%" % ("share", 100.0 * total["LUT"] / budget["LUT"],
                                                 100.0 * total["FF"] / budget["FF"], 100.0 * total["DSP"] / budget["DSP"],
                                                 100.0 * total["BRAM36"] / budget["BRAM36"]))
    row("not in the total: array logic at %dx%d" % (small, small), own)
    p("")
    p("DSP48E2: %s (%d of %d; the array's own logic and the selection unit use none)"
      % ("fits" if total["DSP"] <= budget["DSP"] else "does NOT fit", total["DSP"], budget["DSP"]))
    p("LUT: %s, before the array's select multiplexers" % ("fits" if total["LUT"] <= budget["LUT"] else "does NOT fit"))
    p("")
    p("Limits: yosys' generic mapping, no timing constraints, no retiming or placement; the blocks are")
    p("combinational between registers as written (not pipelined for 200 MHz); hierarchy kept (no")
    p("optimisation across a PE); the array's own logic (sequencer, select multiplexers) is measured at")
    p("%dx%d only: abc folds the computed select into the multiplexers, superlinearly in the PEs, so it" % (small, small))
    p("is not scaled; the operand banks (BRAM), the load/store paths and the kernel's other units are not")
    p("RTL and not counted.")
    report = "\n".join(lines) + "\n"
    open(os.path.join(a.work, "resources.txt"), "w").write(report)
    sys.stdout.write(report)


if __name__ == "__main__":
    main()
