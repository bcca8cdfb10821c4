# cmake -DUI_DIR=DIR -DOUT=FILE.c -P embed_ui.cmake
#
# The page's files, compiled into breakglass-web: every file under UI_DIR
# (recursively) becomes a byte array in the generated C source OUT, with
# its path, content type, size and content hash (the first 12 hex digits
# of its SHA-256), in the table `web_assets` of apps/web/assets.h. Nothing
# of the page is read from disk at run time.
#
# How the page is written (docs/web.md, "The page"):
# - Every file is served at /ui/<build>/<path>, where <build> is a hash
#   over all the files, with `Cache-Control: immutable`: a new build has
#   new URLs, so a browser never mixes old and new files.
# - index.html is also served at `/` (no-cache). In any .html file the
#   placeholder {{ui}} is replaced here by /ui/<build>, so index.html
#   writes `<script type="module" src="{{ui}}/app.js">`. Nothing else is
#   rewritten: JavaScript modules import each other relatively
#   (`import x from "./x.js"`), CSS refers to images relatively, and those
#   resolve under the same /ui/<build>/ base.
# - Paths: letters, digits, '.', '_', '-' and '/', at most 72 characters;
#   files and directories starting with '.' and names ending in '~' are
#   skipped; any other file of an unknown type stops the build.
cmake_minimum_required(VERSION 3.21)
foreach(var IN ITEMS UI_DIR OUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed_ui.cmake: -D${var}= is missing")
  endif()
endforeach()

file(GLOB_RECURSE files RELATIVE "${UI_DIR}" "${UI_DIR}/*")
list(SORT files)
set(kept "")
foreach(f IN LISTS files)
  if(f MATCHES "(^|/)\\." OR f MATCHES "~$")
    continue()
  endif()
  list(APPEND kept "${f}")
endforeach()
if(NOT "index.html" IN_LIST kept)
  message(FATAL_ERROR "embed_ui.cmake: ${UI_DIR}/index.html is missing: the page starts there")
endif()

function(ui_type path outvar)
  if(path MATCHES "\\.html$")
    set(t "text/html; charset=utf-8")
  elseif(path MATCHES "\\.css$")
    set(t "text/css; charset=utf-8")
  elseif(path MATCHES "\\.(js|mjs)$")
    set(t "text/javascript; charset=utf-8")
  elseif(path MATCHES "\\.webmanifest$")
    set(t "application/manifest+json")
  elseif(path MATCHES "\\.json$")
    set(t "application/json")
  elseif(path MATCHES "\\.svg$")
    set(t "image/svg+xml")
  elseif(path MATCHES "\\.png$")
    set(t "image/png")
  elseif(path MATCHES "\\.ico$")
    set(t "image/x-icon")
  elseif(path MATCHES "\\.txt$")
    set(t "text/plain; charset=utf-8")
  else()
    message(FATAL_ERROR "embed_ui.cmake: ${path}: no content type known for this kind of file "
                        "(html css js mjs webmanifest json svg png ico txt)")
  endif()
  set(${outvar} "${t}" PARENT_SCOPE)
endfunction()

# The build hash: over every file's path and content.
set(manifest "")
foreach(f IN LISTS kept)
  string(LENGTH "${f}" n)
  if(n GREATER 72 OR NOT f MATCHES "^[A-Za-z0-9_][A-Za-z0-9._/-]*$" OR f MATCHES "\\.\\.")
    message(FATAL_ERROR "embed_ui.cmake: '${f}': an asset path is letters, digits, '._-/', at most 72 characters")
  endif()
  ui_type("${f}" type)
  file(SHA256 "${UI_DIR}/${f}" h)
  string(APPEND manifest "${f} ${h}\n")
endforeach()
string(SHA256 build "${manifest}")
string(SUBSTRING "${build}" 0 12 build)

set(tmp "${OUT}.work")
file(MAKE_DIRECTORY "${tmp}")
set(arrays "")
set(rows "")
set(total 0)
set(i 0)
string(REPEAT "0x[0-9a-f][0-9a-f]," 16 row) # 16 bytes a line (no {n} in CMake regexes)
foreach(f IN LISTS kept)
  ui_type("${f}" type)
  set(src "${UI_DIR}/${f}")
  if(f MATCHES "\\.html$")
    file(READ "${src}" text)
    string(REPLACE "{{ui}}" "/ui/${build}" text "${text}")
    set(src "${tmp}/${i}.html")
    file(WRITE "${src}" "${text}")
  endif()
  file(SHA256 "${src}" h)
  string(SUBSTRING "${h}" 0 12 h)
  file(READ "${src}" hex HEX)
  string(LENGTH "${hex}" len)
  math(EXPR nbytes "${len} / 2")
  math(EXPR total "${total} + ${nbytes}")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "(${row})" "\\1\n\t" bytes "${bytes}")
  # A trailing NUL keeps an empty file a valid array; size excludes it.
  string(APPEND arrays "/* ${f} */\nstatic const unsigned char a${i}[] = {\n\t${bytes}0x00};\n\n")
  string(APPEND rows "\t{\"${f}\", \"${type}\", a${i}, ${nbytes}, \"${h}\"},\n")
  math(EXPR i "${i} + 1")
endforeach()
file(REMOVE_RECURSE "${tmp}")

file(WRITE "${OUT}.tmp"
  "/* Generated from apps/web/ui/ by cmake/embed_ui.cmake. Do not edit. */\n"
  "#include \"assets.h\"\n\n"
  "${arrays}"
  "const web_asset web_assets[] = {\n${rows}};\n"
  "const size_t web_assets_count = ${i};\n"
  "const size_t web_assets_total = ${total};\n"
  "const char web_assets_build[] = \"${build}\";\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
