// libsystemc.so refers to sc_main from its own main(). Every program of this project has its own
// main and never calls it, but the symbol must resolve in every executable that links SystemC,
// including those that use nothing of the simulator (the linker would not pull a definition kept in
// the static library), so this file is compiled into each of them (an INTERFACE source of
// sat_sim_device).
extern "C" int sc_main(int, char**) { return 0; }
