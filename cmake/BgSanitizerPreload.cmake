# BG_SANITIZER_PRELOAD_ENV: what a Python test that is NOT built with the
# sanitizers needs to load a sanitized libbreakglass: BG_TEST_PRELOAD names
# the ASan runtime, which the test puts in LD_PRELOAD for the interpreter
# that loads the library only (never for sshd, node or pip it starts).
# Empty when the build is not sanitized. Leak checks are off there: the
# interpreter's own allocations at exit are not the library's leaks (the C
# tests check those).
set(BG_SANITIZER_PRELOAD_ENV "")
if(BG_SANITIZE MATCHES "address")
  if(CMAKE_C_COMPILER_ID STREQUAL "Clang")
    set(bg_asan_rt libclang_rt.asan-x86_64.so)
  else()
    set(bg_asan_rt libasan.so)
  endif()
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=${bg_asan_rt}
    OUTPUT_VARIABLE bg_asan_path OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(EXISTS "${bg_asan_path}")
    set(BG_SANITIZER_PRELOAD_ENV "BG_TEST_PRELOAD=${bg_asan_path}"
      "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:fast_unwind_on_malloc=0")
  endif()
endif()
