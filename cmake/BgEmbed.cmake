# bg_embed(TARGET FILE SYMBOL HEADER): at build time, turn FILE (a script
# kept and checked as a file) into HEADER, a generated header defining
# `static const char SYMBOL[]`, and make TARGET's sources depend on it.
# HEADER is a file name under ${CMAKE_CURRENT_BINARY_DIR}/generated, which
# is on TARGET's include path.
function(bg_embed target file symbol header)
  get_filename_component(src ${file} ABSOLUTE)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/generated/${header})
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DIN=${src} -DOUT=${out} -DNAME=${symbol} -P ${PROJECT_SOURCE_DIR}/cmake/embed.cmake
    DEPENDS ${src} ${PROJECT_SOURCE_DIR}/cmake/embed.cmake
    COMMENT "Embedding ${file} as ${symbol}"
    VERBATIM)
  target_sources(${target} PRIVATE ${out})
  target_include_directories(${target} PRIVATE ${CMAKE_CURRENT_BINARY_DIR}/generated)
endfunction()
