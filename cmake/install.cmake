# `make install` (cmake --install): the programs, the versioned shared
# libesim with its public headers and esim.pc, the portal's web folder, the
# man pages, example configuration files and the systemd units, all under
# GNUInstallDirs paths (CMAKE_INSTALL_PREFIX and DESTDIR honoured). See
# docs/operations.md. Included from the top-level CMakeLists.txt.
include(GNUInstallDirs)

# Where the units go: ${prefix}/lib/systemd/system by default; Debian's
# packaging passes /lib/systemd/system (bookworm's dh_installsystemd).
set(ESIM_SYSTEMD_UNITDIR "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" CACHE PATH
  "Directory for the systemd units")

set(ESIM_INSTALL_PROGRAMS)
foreach(p esim esim-pki esim-euicc esim-smdp esim-operator esim-smds)
  if(TARGET ${p})
    list(APPEND ESIM_INSTALL_PROGRAMS ${p})
  endif()
endforeach()
install(TARGETS ${ESIM_INSTALL_PROGRAMS} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Programs in a prefix that ld.so does not search find nothing of ours
# (they link libesim statically); the shared library is for other programs.
if(TARGET libesim_shared)
  install(TARGETS libesim_shared LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/esim DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
    FILES_MATCHING PATTERN "*.h")
  if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
    set(ESIM_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
  else()
    set(ESIM_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  endif()
  if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
    set(ESIM_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
  else()
    set(ESIM_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
  endif()
  configure_file(${CMAKE_SOURCE_DIR}/cmake/esim.pc.in ${CMAKE_BINARY_DIR}/esim.pc @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/esim.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endif()

# The portal's files, found at run time from the program's own path
# (src/operator/main.c installed_web_dir); the build tree keeps using the
# source folder (ESIM_OPERATOR_WEB_DIR).
if(TARGET esim-operator)
  install(DIRECTORY ${CMAKE_SOURCE_DIR}/src/operator/web/
    DESTINATION ${CMAKE_INSTALL_DATADIR}/esim-operator/web)
  file(RELATIVE_PATH ESIM_REL_WEB ${CMAKE_INSTALL_FULL_BINDIR}
    ${CMAKE_INSTALL_FULL_DATADIR}/esim-operator/web)
  target_compile_definitions(esim-operator PRIVATE ESIM_OPERATOR_REL_WEB_DIR="${ESIM_REL_WEB}")
endif()

# Man pages: one roff source each in man/, installed as they are.
file(GLOB ESIM_MAN1 ${CMAKE_SOURCE_DIR}/man/*.1)
file(GLOB ESIM_MAN8 ${CMAKE_SOURCE_DIR}/man/*.8)
install(FILES ${ESIM_MAN1} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${ESIM_MAN8} DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)

# Example configuration files (copied to /etc/esim-*/ by the operator).
file(GLOB ESIM_EXAMPLES ${CMAKE_SOURCE_DIR}/packaging/examples/*.conf)
install(FILES ${ESIM_EXAMPLES} DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# systemd units, with the installed programs' paths.
foreach(unit esim-smdp esim-smds esim-operator esim-euicc)
  if(TARGET ${unit} AND EXISTS ${CMAKE_SOURCE_DIR}/packaging/systemd/${unit}.service.in)
    configure_file(${CMAKE_SOURCE_DIR}/packaging/systemd/${unit}.service.in
      ${CMAKE_BINARY_DIR}/systemd/${unit}.service @ONLY)
    install(FILES ${CMAKE_BINARY_DIR}/systemd/${unit}.service DESTINATION ${ESIM_SYSTEMD_UNITDIR})
  endif()
endforeach()


# The checks of all this (tests/install): install into a DESTDIR and run
# what was installed; man pages against every program's --help; the units
# through systemd-analyze verify; the Debian packages (make deb) in a
# throwaway Debian 12 root (slow: label "slow").
if(ESIM_TESTS)
  add_test(NAME install_destdir COMMAND bash ${CMAKE_SOURCE_DIR}/tests/install/install_test.sh
    ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
  set_tests_properties(install_destdir PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77)
  add_test(NAME install_man_pages COMMAND python3 ${CMAKE_SOURCE_DIR}/tests/install/man_check.py
    ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
  set_tests_properties(install_man_pages PROPERTIES TIMEOUT 60)
  add_test(NAME install_systemd_units COMMAND bash ${CMAKE_SOURCE_DIR}/tests/install/units_test.sh
    ${CMAKE_BINARY_DIR})
  set_tests_properties(install_systemd_units PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77)
  add_test(NAME install_deb COMMAND bash ${CMAKE_SOURCE_DIR}/tests/install/deb_test.sh
    ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR}/deb-test)
  set_tests_properties(install_deb PROPERTIES TIMEOUT 900 SKIP_RETURN_CODE 77 LABELS slow)
endif()
