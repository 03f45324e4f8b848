# The CUDA tests again, on the CPU (README.md here): the .cu files, their launches rewritten
# (rewrite_launches.py), compiled as C++ with cuda_emu.h and linked with the emulated CUDA runtime, cuBLAS,
# cuDNN and NCCL instead of the real ones; under AddressSanitizer and UBSan where the compiler has them.
# Included by tests/CMakeLists.txt where the CUDA toolkit's headers are (a machine with nvcc, with or
# without a GPU).
find_package(Python3 COMPONENTS Interpreter)
if(NOT Python3_Interpreter_FOUND)
  message(STATUS "edm2: no python3: the emulated CUDA tests are not built")
  return()
endif()
set(EMU_OUT ${CMAKE_CURRENT_BINARY_DIR}/cuda_emu)
set(EMU_SRC ${CMAKE_CURRENT_SOURCE_DIR}/cuda_emu)
set(EMU_NET ${PROJECT_SOURCE_DIR}/plugins/network/mp_unet_cuda)
# emu_rewrite(OUT_VAR FILE...): each file's copy with its launches rewritten, in EMU_OUT (.cu becomes .cpp;
# headers keep their names, so that the copies shadow the originals for the rewritten sources).
function(emu_rewrite out_var)
  set(outs "")
  foreach(src ${ARGN})
    get_filename_component(name ${src} NAME)
    string(REGEX REPLACE "\\.cu$" ".cpp" name ${name})
    add_custom_command(OUTPUT ${EMU_OUT}/${name}
      COMMAND ${Python3_EXECUTABLE} ${EMU_SRC}/rewrite_launches.py ${src} ${EMU_OUT}/${name}
      DEPENDS ${src} ${EMU_SRC}/rewrite_launches.py VERBATIM)
    list(APPEND outs ${EMU_OUT}/${name})
  endforeach()
  set(${out_var} ${outs} PARENT_SCOPE)
endfunction()
file(MAKE_DIRECTORY ${EMU_OUT})
set(P ${PROJECT_SOURCE_DIR}/plugins)
emu_rewrite(EMU_HEADERS ${P}/common/launch_cuda.h ${EMU_NET}/lp_math.cuh)
emu_rewrite(EMU_ACT ${EMU_NET}/mp_ops.cu ${EMU_NET}/act_ops.cu ${EMU_NET}/unet_kernels.cu ${EMU_NET}/thin_conv.cu)
emu_rewrite(EMU_ATTN ${EMU_NET}/attention_cuda.cu ${EMU_NET}/attention_lp.cu)
emu_rewrite(EMU_BACKEND ${P}/backend/backend_cuda.cu)
emu_rewrite(EMU_INCEPTION ${P}/features/inception_v3_cuda/inception_kernels.cu)
emu_rewrite(EMU_DINOV2 ${P}/features/dinov2_cuda/dinov2_kernels.cu)
emu_rewrite(EMU_VAE ${P}/vae/sd_vae_cuda/vae_kernels.cu)
emu_rewrite(EMU_LOSS ${P}/loss/uncertainty_weighted_loss_cuda.cu)
emu_rewrite(EMU_ADAM ${P}/optimizer/adam_cuda.cu)

include(CheckCXXCompilerFlag)
set(CMAKE_REQUIRED_LINK_OPTIONS -fsanitize=address,undefined) # the check links, which needs the runtime too
check_cxx_compiler_flag(-fsanitize=address,undefined EDM2_EMU_SANITIZER)
unset(CMAKE_REQUIRED_LINK_OPTIONS)
set(EMU_SAN "")
if(EDM2_EMU_SANITIZER)
  set(EMU_SAN -fsanitize=address,undefined -fno-omit-frame-pointer)
endif()
# Release builds of the emulation at -O2, not -O3: under the sanitizers -O3 takes twice the compile time of -O2
# for the rewritten kernels (act_ops: 57 s against 25 s) and runs the emulated tests no faster.
set(EMU_OPT $<$<CONFIG:Release>:-O2>)
# emu_target(TARGET): compiled for the emulation: the rewritten copies first on the include path, cuda_emu.h
# in every C++ (rewritten .cu) file, float products and sums rounded one by one (as nvcc --fmad=false).
function(emu_target t)
  target_include_directories(${t} BEFORE PRIVATE ${EMU_OUT} ${P}/common ${EMU_SRC} ${CUDAToolkit_INCLUDE_DIRS}
                             ${EDM2_CUDNN_INCLUDE_DIR})
  target_compile_options(${t} PRIVATE -ffp-contract=off ${EMU_OPT} ${EMU_SAN} $<$<COMPILE_LANGUAGE:CXX>:-include;${EMU_SRC}/cuda_emu.h;-w>)
  target_link_libraries(${t} PUBLIC edm2_abi edm2_cuda_emu_rt)
  target_link_options(${t} PRIVATE ${EMU_SAN})
  set_target_properties(${t} PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()

# The emulated CUDA runtime, cuBLAS, cuDNN and NCCL: one shared library for the tests and the plugins they load.
add_library(edm2_cuda_emu_rt SHARED ${EMU_SRC}/cuda_emu.cpp ${EMU_SRC}/fiber.cpp ${EMU_SRC}/cublas_emu.cpp
            ${EMU_SRC}/cudnn_emu.cpp)
target_include_directories(edm2_cuda_emu_rt PRIVATE ${EMU_SRC} ${CUDAToolkit_INCLUDE_DIRS} ${EDM2_CUDNN_INCLUDE_DIR})
if(EDM2_NCCL_FOUND)
  target_sources(edm2_cuda_emu_rt PRIVATE ${EMU_SRC}/nccl_emu.cpp)
  target_include_directories(edm2_cuda_emu_rt PRIVATE ${EDM2_NCCL_INCLUDE_DIR})
endif()
# Its own sources always build warning-free (-Werror, as the ABI tests); the rewritten kernels build with -w
# (their warnings are nvcc's, in the CUDA build of the same files).
target_compile_options(edm2_cuda_emu_rt PRIVATE ${EMU_OPT} ${EMU_SAN} -Wall -Wextra -Werror)
target_link_libraries(edm2_cuda_emu_rt PRIVATE PkgConfig::OPENBLAS ${EMU_SAN})
set_target_properties(edm2_cuda_emu_rt PROPERTIES C_VISIBILITY_PRESET default CXX_VISIBILITY_PRESET default)

# The network's kernels and products (test_cuda_layers, test_cuda_lp_layers, test_cuda_attention).
add_library(edm2_cuda_emu STATIC ${EMU_HEADERS} ${EMU_ACT} ${EMU_ATTN} ${EMU_NET}/gpu_ctx.c ${EMU_NET}/gemm_cuda.c
            ${EMU_NET}/conv_cuda.c ${EMU_NET}/conv_graph.c ${EMU_NET}/conv_fused.c ${EMU_NET}/plan_file.c)
emu_target(edm2_cuda_emu)
target_include_directories(edm2_cuda_emu PUBLIC ${EMU_NET} ${P}/network/mp_unet ${CUDAToolkit_INCLUDE_DIRS}
                           ${EDM2_CUDNN_INCLUDE_DIR})

# The CUDA plugins, emulated, in a plugin tree of their own beside links to the CPU plugins.
set(EMU_TREE ${CMAKE_CURRENT_BINARY_DIR}/cuda_emu_tree)
function(emu_plugin name)
  add_library(${name}_emu MODULE ${ARGN})
  emu_target(${name}_emu)
  set_target_properties(${name}_emu PROPERTIES PREFIX "" OUTPUT_NAME ${name} LIBRARY_OUTPUT_DIRECTORY ${EMU_TREE}/plugins)
  list(APPEND EMU_PLUGINS ${name}_emu)
  set(EMU_PLUGINS ${EMU_PLUGINS} PARENT_SCOPE)
endfunction()
set(EMU_PLUGINS "")
emu_plugin(edm2_backend_cuda ${EMU_HEADERS} ${EMU_BACKEND})
target_compile_definitions(edm2_backend_cuda_emu PRIVATE EDM2_HAVE_CUDNN)
if(EDM2_NCCL_FOUND)
  target_compile_definitions(edm2_backend_cuda_emu PRIVATE EDM2_HAVE_NCCL)
  target_include_directories(edm2_backend_cuda_emu PRIVATE ${EDM2_NCCL_INCLUDE_DIR})
endif()
emu_plugin(edm2_features_inception_v3_cuda ${EMU_HEADERS} ${EMU_INCEPTION} ${P}/features/inception_v3_cuda/plugin.c
           ${P}/features/inception_v3/inception_graph.c)
target_include_directories(edm2_features_inception_v3_cuda_emu PRIVATE ${P}/features/inception_v3_cuda ${P}/features/inception_v3)
emu_plugin(edm2_features_dinov2_cuda ${EMU_HEADERS} ${EMU_DINOV2} ${P}/features/dinov2_cuda/plugin.c ${P}/features/dinov2/dinov2_vit.c)
target_include_directories(edm2_features_dinov2_cuda_emu PRIVATE ${P}/features/dinov2_cuda ${P}/features/dinov2)
emu_plugin(edm2_vae_sd_vae_cuda ${EMU_HEADERS} ${EMU_VAE} ${P}/vae/sd_vae_cuda/plugin.c ${P}/vae/sd_vae/vae_graph.c)
target_include_directories(edm2_vae_sd_vae_cuda_emu PRIVATE ${P}/vae/sd_vae_cuda ${P}/vae/sd_vae)
emu_plugin(edm2_loss_cuda ${EMU_HEADERS} ${EMU_LOSS})
target_include_directories(edm2_loss_cuda_emu PRIVATE ${P}/loss)
emu_plugin(edm2_optimizer_adam_cuda ${EMU_HEADERS} ${EMU_ADAM})
target_include_directories(edm2_optimizer_adam_cuda_emu PRIVATE ${P}/optimizer)
emu_plugin(edm2_network_mp_unet_cuda ${EMU_NET}/plugin.c ${EMU_NET}/unet_cuda.c ${EMU_NET}/block_cuda.c
           ${EMU_NET}/pass_graph.c ${EMU_NET}/workspace_cuda.c ${P}/network/mp_unet/unet_graph.c
           ${P}/network/mp_unet/unet_config.c)
target_link_libraries(edm2_network_mp_unet_cuda_emu PRIVATE edm2_cuda_emu ${MATH_LIB})
# The host beside them (its plugin search starts in its own folder's plugins/).
add_executable(edm2host_emu ${PROJECT_SOURCE_DIR}/host/main.c)
target_link_libraries(edm2host_emu PRIVATE edm2host_core)
target_compile_definitions(edm2host_emu PRIVATE EDM2_VERSION="${PROJECT_VERSION}")
target_link_options(edm2host_emu PRIVATE ${EMU_SAN})
set_target_properties(edm2host_emu PROPERTIES OUTPUT_NAME edm2host RUNTIME_OUTPUT_DIRECTORY ${EMU_TREE})
# And edm2-bench, for what the CUDA network allocates (the workspaces' sizes at any preset and batch; its
# timings mean nothing here): cuda_emu_tree/edm2-bench CONFIG --set backend.plugin=cuda ...
add_executable(edm2-bench_emu ${PROJECT_SOURCE_DIR}/bench/bench_train.c)
target_link_libraries(edm2-bench_emu PRIVATE edm2host_core PkgConfig::OPENBLAS)
target_link_options(edm2-bench_emu PRIVATE ${EMU_SAN})
set_target_properties(edm2-bench_emu PROPERTIES OUTPUT_NAME edm2-bench RUNTIME_OUTPUT_DIRECTORY ${EMU_TREE})
get_property(all_plugins GLOBAL PROPERTY EDM2_PLUGIN_TARGETS)
set(links "")
foreach(t ${all_plugins})
  if(NOT t MATCHES "cuda")
    list(APPEND links COMMAND ${CMAKE_COMMAND} -E create_symlink $<TARGET_FILE:${t}> ${EMU_TREE}/plugins/$<TARGET_FILE_NAME:${t}>)
  endif()
endforeach()
add_custom_target(edm2_cuda_emu_tree ALL ${CMAKE_COMMAND} -E make_directory ${EMU_TREE}/plugins ${links}
                  DEPENDS ${all_plugins} edm2host_emu edm2-bench_emu ${EMU_PLUGINS} VERBATIM)

# The tests, from the GPU tests' sources, named *_emu: the kernel tests link the emulated kernels; the
# plugin tests (EDM2_BUILD_DIR: the emulated tree) load the emulated plugins.
add_library(edm2_test_util_emu STATIC test_util.c)
target_link_libraries(edm2_test_util_emu PUBLIC PkgConfig::CMOCKA edm2host_core)
target_compile_definitions(edm2_test_util_emu PUBLIC EDM2_BUILD_DIR="${EMU_TREE}" EDM2_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
                           EDM2_TEST_DATA="${CMAKE_CURRENT_SOURCE_DIR}/data")
# Each test runs twice: blocks and threads in index order, work run when queued; and as ${name}_reversed,
# with blocks and threads in reverse order, grid-stride launches of at most 3 blocks and queued work run at
# the host's next wait (EDM2_EMU_ORDER, EDM2_EMU_GRID_CAP, EDM2_EMU_DEFER: cuda_emu.cpp), where a race (a
# missing barrier, a block reading another's output, a result read without waiting for the stream) changes
# a result and each grid-stride loop goes round more than once.
set(EMU_ADVERSE "EDM2_EMU_ORDER=reverse;EDM2_EMU_GRID_CAP=3;EDM2_EMU_DEFER=1")
# UBSan's reports end a test (by default it prints and goes on): among them a 16-byte access at an address
# that is not 16-byte aligned, which the CPU runs and the GPU faults on.
set(EMU_UBSAN "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1")
function(emu_test name src)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE edm2_test_util_emu edm2host_core ${ARGN})
  emu_target(${name})
  add_dependencies(${name} edm2_cuda_emu_tree)
  add_test(NAME ${name} COMMAND ${name})
  add_test(NAME ${name}_reversed COMMAND ${name})
  # OpenBLAS in one thread: its threads would wait on each other through the emulation's many small products.
  # The emulated device is always there: a test that skips has failed to load an emulated plugin.
  set(env "ASAN_OPTIONS=detect_leaks=0;${EMU_UBSAN};OPENBLAS_NUM_THREADS=1")
  set_tests_properties(${name} ${name}_reversed PROPERTIES TIMEOUT 600
                       FAIL_REGULAR_EXPRESSION "\\[  SKIPPED \\]|skipped:|SKIP:")
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "${env}")
  set_tests_properties(${name}_reversed PROPERTIES ENVIRONMENT "${env};${EMU_ADVERSE}")
endfunction()
foreach(t test_cuda_layers test_cuda_lp_layers test_cuda_attention)
  emu_test(${t}_emu ${t}.c edm2_cuda_emu edm2_mp_unet_cpu)
endforeach()
emu_test(test_inception_emu test_inception.c edm2_inception_cpu)
emu_test(test_dinov2_emu test_dinov2.c)
emu_test(test_vae_emu test_vae.c edm2_sd_vae_cpu)
emu_test(test_backend_parity_emu test_backend_parity.c)
emu_test(test_cuda_network_emu test_cuda_network.c)
# (its cuDNN fuses every epilogue that EDM2_CUDNN_FUSE asks for: test_plan_fused requires it)
target_compile_definitions(test_cuda_network_emu PRIVATE EDM2_TEST_EMULATED=1)
# check-ref (in test_cuda_network) finds the plugins on EDM2_PLUGIN_PATH.
set_property(TEST test_cuda_network_emu test_cuda_network_emu_reversed APPEND PROPERTY ENVIRONMENT
             "EDM2_PLUGIN_PATH=${EMU_TREE}/plugins")
# (the plan tests, half its time, choose and keep cuDNN's algorithms on the host: once is enough)
set_property(TEST test_cuda_network_emu_reversed APPEND PROPERTY ENVIRONMENT "EDM2_TEST_SKIP=test_plan_*")
set_property(TEST test_inception_emu test_inception_emu_reversed test_vae_emu test_vae_emu_reversed test_dinov2_emu
             test_dinov2_emu_reversed APPEND PROPERTY ENVIRONMENT "EDM2_TEST_FILTER=test_cuda_matches")
# The emulation's own test: its orders, its warps one at a time, a missing barrier caught in each order,
# deferred work and non-blocking streams, fresh memory holding NaN, undefined shuffles stopping the run.
emu_rewrite(EMU_SCHEDULE_TEST ${EMU_SRC}/test_emu_schedule.cu)
add_executable(test_emu_schedule ${EMU_HEADERS} ${EMU_SCHEDULE_TEST})
emu_target(test_emu_schedule)
target_link_libraries(test_emu_schedule PRIVATE PkgConfig::CMOCKA)
add_test(NAME test_emu_schedule COMMAND test_emu_schedule)
set_tests_properties(test_emu_schedule PROPERTIES ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0;${EMU_UBSAN}")
# Training on the emulated CUDA backend: NCCL's group of one bytewise the plain run, bf16 with CUDA graphs.
add_test(NAME test_train_emu COMMAND ${EMU_SRC}/train_emu.sh ${EMU_TREE} ${PROJECT_SOURCE_DIR})
add_test(NAME test_train_emu_reversed COMMAND ${EMU_SRC}/train_emu.sh ${EMU_TREE} ${PROJECT_SOURCE_DIR})
set_tests_properties(test_train_emu PROPERTIES TIMEOUT 600 ENVIRONMENT "${EMU_UBSAN}")
set_tests_properties(test_train_emu_reversed PROPERTIES TIMEOUT 600 ENVIRONMENT "${EMU_UBSAN};${EMU_ADVERSE}")
