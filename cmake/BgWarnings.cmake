# Warning flags and sanitizers, applied per target with bg_target_defaults().

set(BG_WARNING_FLAGS
  -Wall -Wextra -Wpedantic -Wshadow -Wformat=2 -Wstrict-prototypes
  -Wmissing-prototypes -Wwrite-strings -Wpointer-arith -Wundef
  -Wcast-align -Wnull-dereference -Wvla -Wimplicit-fallthrough
  -Wno-unused-parameter)
if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
  list(APPEND BG_WARNING_FLAGS -Wlogical-op -Wduplicated-cond -Wduplicated-branches)
endif()
if(BG_WERROR)
  list(APPEND BG_WARNING_FLAGS -Werror)
endif()

set(BG_SANITIZE_FLAGS "")
if(BG_SANITIZE)
  set(BG_SANITIZE_FLAGS -fsanitize=${BG_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_compile_options(${BG_SANITIZE_FLAGS})
  add_link_options(${BG_SANITIZE_FLAGS})
endif()

# libFuzzer needs the code under test instrumented for coverage, not only
# the fuzzer's own file: with BG_BUILD_FUZZERS every target gets the
# coverage instrumentation and the sanitizers the fuzzers run with.
if(BG_BUILD_FUZZERS)
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# _GNU_SOURCE for getline, explicit_bzero, pipe2, memmem and friends; the
# code targets Linux (Debian 12) only.
function(bg_target_defaults target)
  target_compile_options(${target} PRIVATE ${BG_WARNING_FLAGS})
  target_compile_definitions(${target} PRIVATE _GNU_SOURCE)
endfunction()
