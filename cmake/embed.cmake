# cmake -DIN=FILE -DOUT=HEADER -DNAME=SYMBOL -P embed.cmake
#
# Writes HEADER defining `static const char SYMBOL[]`: FILE's bytes and a
# terminating NUL, so a script kept as a file (and checked as one) is a C
# string in the library. A NUL inside FILE is refused: the string would
# end there.
foreach(var IN ITEMS IN OUT NAME)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed.cmake: -D${var}= is missing")
  endif()
endforeach()
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" len)
math(EXPR nbytes "${len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
if(bytes MATCHES "0x00,")
  message(FATAL_ERROR "embed.cmake: ${IN} holds a NUL byte; it cannot become a C string")
endif()
string(REPEAT "0x[0-9a-f][0-9a-f]," 16 row) # 16 bytes a line (no {n} in CMake regexes)
string(REGEX REPLACE "(${row})" "\\1\n\t" bytes "${bytes}")
get_filename_component(from "${IN}" NAME)
file(WRITE "${OUT}.tmp"
  "/* Generated from ${from} (${nbytes} bytes) by cmake/embed.cmake. Do not edit. */\n"
  "static const char ${NAME}[] = {\n\t${bytes}0x00};\n")
# Only touch OUT when it changes, so an unchanged script rebuilds nothing.
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
