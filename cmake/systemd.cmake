# Readiness, reload and stop for systemd (Type=notify, docs/operations.md):
# the daemons call sd_notify (libsystemd; a no-op without NOTIFY_SOCKET).
# Every build links it, the fuzz build's programs too.
pkg_check_modules(LIBSYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
foreach(p esim-smdp esim-operator esim-euicc esim-smds)
  if(TARGET ${p})
    target_link_libraries(${p} PRIVATE PkgConfig::LIBSYSTEMD)
  endif()
endforeach()
