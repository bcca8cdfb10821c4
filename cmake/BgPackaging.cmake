# Debian packages, one per install component, built by one `cpack` call
# (scripts/package configures a build with CMAKE_INSTALL_PREFIX=/usr):
#
#   breakglass-pve      the forced command for the Proxmox host (static:
#                       it needs no libbreakglass), pve.conf example as a
#                       conffile, logrotate file, state directory 0700
#   breakglassctl       the operator's CLI
#   libbreakglass1      the shared library (package named after the soname)
#   libbreakglass-dev   headers, .so link, static archive, .pc, CMake package
#   breakglass-web      the web console and its hardened systemd unit
#                       (only when apps/web builds breakglass-web)
#
# Depends: comes from dpkg-shlibdeps; the package relations between our
# own packages from the component dependencies below.

set(BG_DEB_LIB libbreakglass${BG_SOVERSION})
set(BG_DEB_RELEASE 1)
set(BG_DEB_VERSION ${PROJECT_VERSION}-${BG_DEB_RELEASE})
set(BG_DEB_MAINTAINER "breakglass maintainers <breakglass@example.org>")
set(BG_DEB_ASSETS ${PROJECT_SOURCE_DIR}/deploy)

# Absolute paths below: /etc and /var are not under the prefix.
set(BG_DEB_SYSCONFDIR /etc)
set(BG_DEB_STATEDIR /var/lib/breakglass-pve)

# --- what only the packages carry ---------------------------------------
if(TARGET breakglass-pve)
  install(FILES ${BG_DEB_ASSETS}/pve/pve.conf
    DESTINATION ${BG_DEB_SYSCONFDIR}/breakglass
    PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
    COMPONENT pve)
  install(FILES ${BG_DEB_ASSETS}/pve/breakglass-pve.logrotate
    DESTINATION ${BG_DEB_SYSCONFDIR}/logrotate.d
    RENAME breakglass-pve
    COMPONENT pve)
  # The forensics bundles hold guest memory maps and kernel logs: root only.
  install(DIRECTORY DESTINATION ${BG_DEB_STATEDIR}
    DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE
    COMPONENT pve)
endif()
if(TARGET breakglass-web)
  install(FILES ${BG_DEB_ASSETS}/systemd/breakglass-web.service
    DESTINATION /lib/systemd/system
    COMPONENT web)
endif()

# Every package carries its copyright and its Debian changelog.
string(TIMESTAMP BG_DEB_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
set(BG_DEB_COMPONENTS lib dev)
set(BG_DEB_NAME_lib ${BG_DEB_LIB})
set(BG_DEB_NAME_dev libbreakglass-dev)
set(BG_DEB_NAME_pve breakglass-pve)
set(BG_DEB_NAME_ctl breakglassctl)
set(BG_DEB_NAME_web breakglass-web)
foreach(app IN ITEMS pve ctl web)
  if(TARGET ${BG_DEB_NAME_${app}})
    list(APPEND BG_DEB_COMPONENTS ${app})
  endif()
endforeach()
foreach(comp IN LISTS BG_DEB_COMPONENTS)
  set(BG_DEB_SOURCE ${BG_DEB_NAME_${comp}})
  set(dir ${PROJECT_BINARY_DIR}/debian/${comp})
  configure_file(${BG_DEB_ASSETS}/debian/changelog.in ${dir}/changelog.Debian @ONLY)
  add_custom_command(OUTPUT ${dir}/changelog.Debian.gz
    COMMAND gzip -9nkf ${dir}/changelog.Debian
    DEPENDS ${dir}/changelog.Debian)
  add_custom_target(bg_deb_changelog_${comp} ALL DEPENDS ${dir}/changelog.Debian.gz)
  install(FILES ${BG_DEB_ASSETS}/debian/copyright ${dir}/changelog.Debian.gz
    DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${BG_DEB_NAME_${comp}}
    COMPONENT ${comp})
endforeach()

# --- CPack ---------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME breakglass)
set(CPACK_PACKAGE_VENDOR "breakglass")
set(CPACK_PACKAGE_CONTACT ${BG_DEB_MAINTAINER})
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
set(CPACK_COMPONENTS_ALL ${BG_DEB_COMPONENTS})
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${BG_DEB_RELEASE})
set(CPACK_DEBIAN_PACKAGE_MAINTAINER ${BG_DEB_MAINTAINER})
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
# dpkg-shlibdeps must find libbreakglass.so.1 in the build tree, and the
# library's shlibs file says which package provides it.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${PROJECT_BINARY_DIR}/lib)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_LIB_PACKAGE_CONTROL_EXTRA ${BG_DEB_ASSETS}/debian/libbreakglass/triggers)

foreach(comp IN LISTS BG_DEB_COMPONENTS)
  string(TOUPPER ${comp} C)
  set(CPACK_DEBIAN_${C}_PACKAGE_NAME ${BG_DEB_NAME_${comp}})
endforeach()
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PVE_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_CTL_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_WEB_PACKAGE_SECTION admin)

# The -dev package's CMake package and .pc name these: a consumer that
# links statically needs them, one that links dynamically needs the headers.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
  "libssh2-1-dev, libcurl4-openssl-dev | libcurl-dev, libjson-c-dev, libinih-dev")
# libbreakglass loads libcurl when it first talks to an LLM and libssh2 when
# it first opens an SSH connection (dlopen, so dpkg-shlibdeps cannot see
# them): declared. 7.85 for CURLOPT_PROTOCOLS_STR, 1.9 for SHA-256 host key
# hashes.
set(CPACK_DEBIAN_LIB_PACKAGE_DEPENDS "libcurl4 (>= 7.85.0), libssh2-1 (>= 1.9.0)")
set(CPACK_DEBIAN_PVE_PACKAGE_DEPENDS "logrotate")
set(CPACK_DEBIAN_PVE_PACKAGE_SUGGESTS "gdb")
set(CPACK_DEBIAN_PVE_PACKAGE_CONTROL_EXTRA ${BG_DEB_ASSETS}/debian/breakglass-pve/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# Each description's first line is its package's summary. CPack would put
# the project's summary in front of it unless the summary is CPack's own
# default, so it is set to exactly that.
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${CMAKE_PROJECT_NAME} built using CMake")
set(CPACK_DEBIAN_LIB_DESCRIPTION "recover a wedged VM: shared library
libbreakglass talks to a Proxmox host's break-glass forced command and to
a development VM over SSH, collects forensics and triage, and runs an
LLM agent whose mutating steps need approval.")
set(CPACK_DEBIAN_DEV_DESCRIPTION "recover a wedged VM: development files
Headers, the static archive, the pkg-config file and the CMake package
(find_package(breakglass)) of libbreakglass.")
set(CPACK_DEBIAN_PVE_DESCRIPTION "recover a wedged VM: forced command for the Proxmox host
breakglass-pve is the only program a break-glass SSH key may run on a
Proxmox VE host (command= in authorized_keys): status, forensics, reset,
stop, start and cycle of one configured VM, with a forensics bundle taken
before every mutation.")
set(CPACK_DEBIAN_CTL_DESCRIPTION "recover a wedged VM: command-line client
breakglassctl runs the Proxmox verbs, commands and triage on the
development VM, and the recovery agent from a terminal.")
set(CPACK_DEBIAN_WEB_DESCRIPTION "recover a wedged VM: web console
breakglass-web serves the recovery page and API (one static page, no
third-party code at run time), with a hardened systemd unit for hosts
outside Kubernetes.")
set(CPACK_COMPONENT_DEV_DEPENDS lib)
set(CPACK_COMPONENT_CTL_DEPENDS lib)
set(CPACK_COMPONENT_WEB_DEPENDS lib)

include(CPack)
