# The installed package. `cmake --install build --prefix P` puts under P:
#   include/sat/*.hpp, include/sat/arch/*.hpp   the public API and the contract headers it includes
#   lib/libsat*.a                              libsat and every library sat_backends links
#   lib/cmake/sat/                             find_package(sat): sat::sat, its dependencies, version
#   lib/pkgconfig/sat.pc                       the same for pkg-config
#   share/sat/models/*.json                    the model descriptions (SAT_MODELS_DIR)
# Included by the top-level CMakeLists.txt after sat_backend_table(), so that the backends of this
# build are known; docs/user-guide.md, "The C++ API", shows its use.
include(CMakePackageConfigHelpers)

set(SAT_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/sat)
set(SAT_INSTALL_MODELSDIR ${CMAKE_INSTALL_DATADIR}/sat/models)

# The names of the package, for the in-tree examples too (host/examples is one source for both).
add_library(sat::sat ALIAS sat_backends)
set(SAT_MODELS_DIR ${PROJECT_SOURCE_DIR}/models)

# Walks the link dependencies of `target` as the installed tree sees them ($<INSTALL_INTERFACE:>
# kept, $<BUILD_INTERFACE:> dropped). Collects in global properties the project's libraries in
# post-order (each after all it needs) and the imported targets they need from outside. A plain
# path or flag is refused: it would carry this machine's layout into the package.
function(_sat_package_walk target)
  get_property(seen GLOBAL PROPERTY _SAT_PKG_SEEN)
  if(target IN_LIST seen)
    return()
  endif()
  set_property(GLOBAL APPEND PROPERTY _SAT_PKG_SEEN ${target})
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    get_target_property(deps ${target} INTERFACE_LINK_LIBRARIES)
  else()
    get_target_property(deps ${target} LINK_LIBRARIES)
  endif()
  if(NOT deps)
    set(deps "")
  endif()
  foreach(dep IN LISTS deps)
    if(dep MATCHES "^\\$<BUILD_INTERFACE:")
      continue()
    elseif(dep MATCHES "^\\$<INSTALL_INTERFACE:(.*)>$")
      set(dep ${CMAKE_MATCH_1})
    elseif(dep MATCHES "^\\$<")
      message(FATAL_ERROR "cmake/Package.cmake: ${target} links '${dep}', a generator expression the "
                          "package does not know how to install")
    endif()
    if(TARGET ${dep})
      get_target_property(aliased ${dep} ALIASED_TARGET)
      if(aliased)
        set(dep ${aliased})
      endif()
      get_target_property(is_imported ${dep} IMPORTED)
      if(is_imported)
        set_property(GLOBAL APPEND PROPERTY _SAT_PKG_IMPORTED ${dep})
      else()
        _sat_package_walk(${dep})
      endif()
    elseif(dep MATCHES "::")
      # an imported target of another directory's scope (CUDA::, found in kernels/)
      if(NOT dep STREQUAL "sat::dnnl")         # which the package's config makes (host/CMakeLists.txt)
        set_property(GLOBAL APPEND PROPERTY _SAT_PKG_IMPORTED ${dep})
      endif()
    else()
      message(FATAL_ERROR "cmake/Package.cmake: ${target} links '${dep}', which is not a target: link "
                          "it through an imported target so that the package can find it again")
    endif()
  endforeach()
  set_property(GLOBAL APPEND PROPERTY _SAT_PKG_ORDER ${target})
endfunction()

_sat_package_walk(sat_backends)
get_property(_sat_pkg_targets GLOBAL PROPERTY _SAT_PKG_ORDER)
list(REVERSE _sat_pkg_targets)               # link order: each library before those it needs
get_property(_sat_pkg_imported GLOBAL PROPERTY _SAT_PKG_IMPORTED)
list(REMOVE_DUPLICATES _sat_pkg_imported)

# What each outside dependency becomes in the CMake config (find_dependency) and in sat.pc
# (Requires, or flags in Libs). libsat and its backends are static, so their dependencies are
# needed by every link: they go in Requires and Libs, not in the .private fields, which a plain
# `pkg-config --libs` leaves out. A dependency missing here stops the configure step rather than
# produce a package that cannot link.
set(_sat_cfg_deps "")
set(_sat_pc_requires "")
set(_sat_pc_libs_deps "-ldnnl")              # sat::dnnl, see satConfig.cmake.in (oneDNN has no .pc)
foreach(dep IN LISTS _sat_pkg_imported)
  if(dep MATCHES "^OpenMP::")
    list(APPEND _sat_cfg_deps "find_dependency(OpenMP)")
    list(APPEND _sat_pc_libs_deps "${OpenMP_CXX_FLAGS}")
  elseif(dep MATCHES "^nlohmann_json::")
    list(APPEND _sat_cfg_deps "find_dependency(nlohmann_json 3)")
    list(APPEND _sat_pc_requires "nlohmann_json >= 3")
  elseif(dep STREQUAL "hwy::hwy")
    list(APPEND _sat_cfg_deps "find_dependency(hwy)")
    list(APPEND _sat_pc_requires "libhwy")
  elseif(dep MATCHES "^ZLIB::")
    list(APPEND _sat_cfg_deps "find_dependency(ZLIB)")
    list(APPEND _sat_pc_requires "zlib")
  elseif(dep STREQUAL "PkgConfig::SYSTEMC")
    list(APPEND _sat_cfg_deps "find_dependency(PkgConfig)
if(NOT TARGET PkgConfig::SYSTEMC)
  pkg_check_modules(SYSTEMC QUIET IMPORTED_TARGET systemc)
  if(NOT SYSTEMC_FOUND)
    set(sat_FOUND FALSE)
    set(sat_NOT_FOUND_MESSAGE \"sat was built with the sim backend, which needs SystemC: pkg-config systemc found nothing\")
    return()
  endif()
endif()")
    list(APPEND _sat_pc_requires "systemc")
  elseif(dep MATCHES "^CUDA::")
    list(APPEND _sat_cfg_deps "find_dependency(CUDAToolkit)")
    if(NOT CUDAToolkit_LIBRARY_DIR)
      find_package(CUDAToolkit REQUIRED)       # kernels/ found it in its own scope
    endif()
    if(dep STREQUAL "CUDA::cudart_static")
      # what FindCUDAToolkit's CUDA::cudart_static links besides the archive
      list(APPEND _sat_pc_libs_deps "-L${CUDAToolkit_LIBRARY_DIR} -lcudart_static -ldl -lrt -lpthread")
    elseif(dep STREQUAL "CUDA::cublas")
      list(APPEND _sat_pc_libs_deps "-L${CUDAToolkit_LIBRARY_DIR} -lcublas")
    else()
      message(FATAL_ERROR "cmake/Package.cmake: no pkg-config flags known for ${dep}")
    endif()
  elseif(dep STREQUAL "sat::xrt")
    # XRT has no CMake package of its own; driver/CMakeLists.txt found it by name, and so does this.
    list(APPEND _sat_cfg_deps "if(NOT TARGET sat::xrt)
  find_library(SAT_XRT_COREUTIL xrt_coreutil HINTS /opt/xilinx/xrt/lib)
  find_library(SAT_UUID_LIBRARY uuid)
  if(NOT SAT_XRT_COREUTIL OR NOT SAT_UUID_LIBRARY)
    set(sat_FOUND FALSE)
    set(sat_NOT_FOUND_MESSAGE \"sat was built with the fpga backend, which needs XRT (libxrt_coreutil) and libuuid\")
    return()
  endif()
  add_library(sat::xrt INTERFACE IMPORTED)
  set_property(TARGET sat::xrt APPEND PROPERTY INTERFACE_LINK_LIBRARIES \${SAT_XRT_COREUTIL})
  set_property(TARGET sat::xrt APPEND PROPERTY INTERFACE_LINK_LIBRARIES \${SAT_UUID_LIBRARY})
endif()")
    get_filename_component(_sat_xrt_libdir ${SAT_XRT_COREUTIL} DIRECTORY)
    list(APPEND _sat_pc_libs_deps "-L${_sat_xrt_libdir} -lxrt_coreutil -luuid")
  elseif(dep MATCHES "^sat::(cudnn|nccl)$")
    # cuDNN and NCCL come with the CUDA toolkit here (NCCL perhaps from SAT_NCCL_ROOT or Python's
    # nvidia/nccl), without a CMake package: found again by name, in the toolkit or where the build
    # found it, as kernels/ did.
    set(_sat_lib ${CMAKE_MATCH_1})
    string(TOUPPER ${_sat_lib} _sat_LIB)
    get_filename_component(_sat_libdir ${SAT_${_sat_LIB}_LIBRARY} DIRECTORY)
    list(APPEND _sat_cfg_deps "if(NOT TARGET sat::${_sat_lib})
  find_package(CUDAToolkit)
  find_library(SAT_${_sat_LIB}_LIBRARY NAMES ${_sat_lib} lib${_sat_lib}.so.2
               HINTS \${CUDAToolkit_LIBRARY_DIR} \${CUDAToolkit_LIBRARY_ROOT}/lib ${_sat_libdir})
  if(NOT SAT_${_sat_LIB}_LIBRARY)
    set(sat_FOUND FALSE)
    set(sat_NOT_FOUND_MESSAGE \"sat was built with ${_sat_lib}, which this machine lacks (lib${_sat_lib})\")
    return()
  endif()
  add_library(sat::${_sat_lib} INTERFACE IMPORTED)
  set_property(TARGET sat::${_sat_lib} APPEND PROPERTY INTERFACE_LINK_LIBRARIES \${SAT_${_sat_LIB}_LIBRARY})
endif()")
    list(APPEND _sat_pc_libs_deps "-L${_sat_libdir} -l${_sat_lib}")
  elseif(dep MATCHES "^Threads::")
    list(APPEND _sat_cfg_deps "find_dependency(Threads)")
    list(APPEND _sat_pc_libs_deps "-pthread")
  else()
    message(FATAL_ERROR "cmake/Package.cmake: the package does not know how to find ${dep} again; "
                        "add it to the dependency list here")
  endif()
endforeach()
list(REMOVE_DUPLICATES _sat_cfg_deps)
list(JOIN _sat_cfg_deps "\n" SAT_CONFIG_DEPENDENCIES)

# The package's names: sat::sat is sat_backends (the table of this build's backends and
# open_backend, linking everything below it); libsat itself is sat::core, the contract sat::arch.
set(_sat_pc_libs "")
set(_sat_pc_link_options "")
set(_sat_pc_defines "")
foreach(t IN LISTS _sat_pkg_targets)
  if(t STREQUAL "sat_backends")
    set(name sat)
  elseif(t STREQUAL "sat")
    set(name core)
  else()
    string(REGEX REPLACE "^sat_" "" name ${t})
  endif()
  set_target_properties(${t} PROPERTIES EXPORT_NAME ${name})
  get_target_property(type ${t} TYPE)
  if(type STREQUAL "STATIC_LIBRARY")
    get_target_property(output ${t} OUTPUT_NAME)
    if(NOT output)
      set(output ${t})
    endif()
    string(APPEND _sat_pc_libs " -l${output}")
  elseif(NOT type STREQUAL "INTERFACE_LIBRARY")
    message(FATAL_ERROR "cmake/Package.cmake: ${t} is a ${type}; the package installs static libraries")
  endif()
  get_target_property(opts ${t} INTERFACE_LINK_OPTIONS)
  foreach(opt IN LISTS opts)
    if(opt)
      string(REGEX REPLACE "^LINKER:" "-Wl," opt "${opt}")
      string(APPEND _sat_pc_link_options " ${opt}")
    endif()
  endforeach()
  get_target_property(defs ${t} INTERFACE_COMPILE_DEFINITIONS)
  foreach(def IN LISTS defs)
    if(def AND NOT def MATCHES "\\$<")
      string(APPEND _sat_pc_defines " -D${def}")
    endif()
  endforeach()
endforeach()

install(TARGETS ${_sat_pkg_targets} EXPORT satTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/host/include/sat DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.hpp")
# The whole contract rather than the headers the API includes today (config, isa, status, hd,
# bf16_bits, nm_select): sat::arch is exported and its headers include one another. No generated
# file of build/arch is included by an installed header.
install(FILES ${SAT_ARCH_HEADERS} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sat/arch)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/models/ DESTINATION ${SAT_INSTALL_MODELSDIR}
        FILES_MATCHING PATTERN "*.json")

set(_sat_pkg_dir ${PROJECT_BINARY_DIR}/package)
install(EXPORT satTargets NAMESPACE sat:: DESTINATION ${SAT_INSTALL_CMAKEDIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/satConfig.cmake.in ${_sat_pkg_dir}/satConfig.cmake
                              INSTALL_DESTINATION ${SAT_INSTALL_CMAKEDIR} PATH_VARS SAT_INSTALL_MODELSDIR)
# 0.x: a new minor version may change the API, so only the same major.minor satisfies a request.
write_basic_package_version_file(${_sat_pkg_dir}/satConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${_sat_pkg_dir}/satConfig.cmake ${_sat_pkg_dir}/satConfigVersion.cmake
        DESTINATION ${SAT_INSTALL_CMAKEDIR})

# sat.pc finds its prefix from its own place (${pcfiledir}), as the CMake package does, so that
# `cmake --install --prefix` anywhere gives a working file.
file(RELATIVE_PATH _sat_pc_up /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" SAT_PC_PREFIX "\${pcfiledir}/${_sat_pc_up}")
list(JOIN _sat_pc_requires ", " SAT_PC_REQUIRES)
list(JOIN _sat_pc_libs_deps " " _sat_pc_libs_deps)
set(SAT_PC_LIBS "-L\${libdir}${_sat_pc_link_options}${_sat_pc_libs} ${_sat_pc_libs_deps}")
set(SAT_PC_CFLAGS "-I\${includedir}${_sat_pc_defines}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/sat.pc.in ${_sat_pkg_dir}/sat.pc @ONLY)
install(FILES ${_sat_pkg_dir}/sat.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

string(REPLACE ";" " " _sat_pkg_list "${_sat_pkg_targets}")
message(STATUS "SAT package: installs ${_sat_pkg_list}")
