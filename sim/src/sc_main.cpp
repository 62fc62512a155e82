// libsystemc.so refers to sc_main from its own main(). Every program of this project has its own
// main and never calls it, but the symbol must resolve in every executable that links SystemC,
// including those that use nothing of the simulator. It lives in its own static library,
// sat_sim_sc_main, whose users link with --undefined=sc_main so that the linker pulls it in even
// though nothing of theirs calls it (installed programs, through CMake or pkg-config, too).
extern "C" int sc_main(int, char**) { return 0; }
