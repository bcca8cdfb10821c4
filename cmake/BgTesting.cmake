# bg_add_test(NAME name COMMAND cmd... LABELS label... [TIMEOUT s] [ENVIRONMENT k=v...])
#
# A test that cannot run exits 77. Outside CI that is reported as
# "skipped"; under CI=true (read at configure time) it is a failure, so a
# missing install step cannot hide behind a green run. scripts/test also
# refuses any skip it sees under CI.
function(bg_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT;WORKING_DIRECTORY" "COMMAND;LABELS;ENVIRONMENT" ${ARGN})
  if(NOT T_WORKING_DIRECTORY)
    set(T_WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  endif()
  add_test(NAME ${T_NAME} COMMAND ${T_COMMAND} WORKING_DIRECTORY ${T_WORKING_DIRECTORY})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
  if(NOT "$ENV{CI}" STREQUAL "true")
    set_tests_properties(${T_NAME} PROPERTIES SKIP_RETURN_CODE 77)
  endif()
  set(env "BG_SOURCE_DIR=${PROJECT_SOURCE_DIR}" "BG_BINARY_DIR=${PROJECT_BINARY_DIR}" ${T_ENVIRONMENT})
  set_tests_properties(${T_NAME} PROPERTIES ENVIRONMENT "${env}")
endfunction()

# bg_add_unit_test(name source...): a cmocka test linked with the static
# library, with the internal headers of lib/ reachable. The tests of the
# host side (BG_HOST_UNIT_TESTS) link bg_host, the forced command's own
# library; no other test does.
set(BG_HOST_UNIT_TESTS test_pve_host test_pve_host_lock test_qm test_qmp test_proc test_forensics_rules
  test_pve_host_kill test_pvestate test_hostile_peers test_bundle_store test_safe_paths)
function(bg_add_unit_test name)
  add_executable(${name} ${ARGN})
  bg_target_defaults(${name})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/lib ${PROJECT_SOURCE_DIR}/tests/unit)
  if(name IN_LIST BG_HOST_UNIT_TESTS)
    target_link_libraries(${name} PRIVATE bg_host PkgConfig::CMOCKA)
  else()
    target_link_libraries(${name} PRIVATE breakglass_static PkgConfig::CMOCKA)
  endif()
  if(TARGET bg_qemu_id_shim)
    target_compile_definitions(${name} PRIVATE BG_TEST_QEMU_ID_SHIM="$<TARGET_FILE:bg_qemu_id_shim>")
    add_dependencies(${name} bg_qemu_id_shim)
  endif()
  bg_add_test(NAME ${name} COMMAND ${name} LABELS unit
    ENVIRONMENT "BG_FIXTURES=${PROJECT_SOURCE_DIR}/tests/fixtures")
endfunction()

# Include every immediate subdirectory of `dir` that has a CMakeLists.txt,
# so each area (pve, ssh, agent, lab, …) owns its own test wiring.
function(bg_add_subdirectories dir)
  file(GLOB children LIST_DIRECTORIES true RELATIVE ${dir} CONFIGURE_DEPENDS ${dir}/*)
  list(SORT children)
  foreach(child IN LISTS children)
    if(IS_DIRECTORY ${dir}/${child} AND EXISTS ${dir}/${child}/CMakeLists.txt)
      add_subdirectory(${dir}/${child})
    endif()
  endforeach()
endfunction()
