# Translations (docs/i18n.md): esim's messages from po/LANG.po, compiled by
# msgfmt into BUILD/locale/LANG/LC_MESSAGES/esim.mo (the build tree's esim
# reads them there, an installed one under share/locale), and the build check
# of every catalogue, the portal's web ones included (CTest i18n_catalogues).
include(GNUInstallDirs)
set(ESIM_PO_LANGS nl fr zh_CN)
find_program(MSGFMT_EXECUTABLE msgfmt)
set_property(SOURCE ${CMAKE_SOURCE_DIR}/src/util/i18n.c APPEND PROPERTY COMPILE_DEFINITIONS
  ESIM_LOCALEDIR="${CMAKE_INSTALL_FULL_LOCALEDIR}"
  ESIM_BUILD_LOCALEDIR="${CMAKE_BINARY_DIR}/locale"
  ESIM_BUILD_DIR="${CMAKE_BINARY_DIR}")
if(MSGFMT_EXECUTABLE)
  set(esim_mo_files)
  foreach(lang ${ESIM_PO_LANGS})
    set(mo ${CMAKE_BINARY_DIR}/locale/${lang}/LC_MESSAGES/esim.mo)
    add_custom_command(OUTPUT ${mo}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/locale/${lang}/LC_MESSAGES
      COMMAND ${MSGFMT_EXECUTABLE} --check -o ${mo} ${CMAKE_SOURCE_DIR}/po/${lang}.po
      DEPENDS ${CMAKE_SOURCE_DIR}/po/${lang}.po
      COMMENT "msgfmt po/${lang}.po" VERBATIM)
    list(APPEND esim_mo_files ${mo})
    install(FILES ${mo} DESTINATION ${CMAKE_INSTALL_LOCALEDIR}/${lang}/LC_MESSAGES)
  endforeach()
  add_custom_target(esim_translations ALL DEPENDS ${esim_mo_files})
  if(TARGET esim)
    add_dependencies(esim esim_translations)
  endif()
else()
  message(WARNING "msgfmt not found (Debian package gettext, scripts/deps.sh): esim speaks English only")
endif()

if(ESIM_TESTS AND NOT ESIM_FUZZ)
  find_package(Python3 COMPONENTS Interpreter)
  if(Python3_Interpreter_FOUND)
    add_test(NAME i18n_catalogues
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/i18n/check_catalogues.py ${CMAKE_SOURCE_DIR})
  endif()
  if(TARGET esim)
    add_test(NAME i18n_esim COMMAND bash ${CMAKE_SOURCE_DIR}/tests/i18n/esim_lang.sh ${CMAKE_BINARY_DIR})
  endif()
endif()
