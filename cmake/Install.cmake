# What `cmake --install` puts where (GNU layout under CMAKE_INSTALL_PREFIX), in
# two components: runtime (the tool, its man page, shell completions, docs and
# the deployment samples) and dev (the static library, its headers and a
# pkg-config file). The .deb (cmake/Packaging.cmake) is the runtime component.
include(GNUInstallDirs)

# Shell completions, generated from the option table by the tool just built,
# so they always list exactly the options it takes.
set(DDA_COMPLETIONS_DIR ${PROJECT_BINARY_DIR}/completions)
add_custom_command(
  OUTPUT ${DDA_COMPLETIONS_DIR}/ddbaudit ${DDA_COMPLETIONS_DIR}/_ddbaudit
  COMMAND ${CMAKE_COMMAND} -E make_directory ${DDA_COMPLETIONS_DIR}
  COMMAND sh -c "\"$1\" --completions bash > \"$2\" && \"$1\" --completions zsh > \"$3\""
          sh $<TARGET_FILE:ddbaudit-cli> ${DDA_COMPLETIONS_DIR}/ddbaudit
          ${DDA_COMPLETIONS_DIR}/_ddbaudit
  DEPENDS ddbaudit-cli
  COMMENT "Generating bash and zsh completions"
  VERBATIM)
add_custom_target(completions ALL
  DEPENDS ${DDA_COMPLETIONS_DIR}/ddbaudit ${DDA_COMPLETIONS_DIR}/_ddbaudit)

install(TARGETS ddbaudit-cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
install(FILES docs/ddbaudit.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT runtime)
install(FILES ${DDA_COMPLETIONS_DIR}/ddbaudit
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions COMPONENT runtime)
install(FILES ${DDA_COMPLETIONS_DIR}/_ddbaudit
  DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions COMPONENT runtime)
file(GLOB DDA_DOCS CONFIGURE_DEPENDS docs/*.md)
install(FILES README.md ${DDA_DOCS} DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT runtime)
install(DIRECTORY samples/deploy/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/deploy
  COMPONENT runtime)

install(TARGETS ddbaudit ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(DIRECTORY include/ddbaudit DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
file(RELATIVE_PATH DDA_PC_TO_PREFIX /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
string(REGEX REPLACE "/$" "" DDA_PC_TO_PREFIX "${DDA_PC_TO_PREFIX}")
configure_file(cmake/ddbaudit.pc.in ${PROJECT_BINARY_DIR}/ddbaudit.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/ddbaudit.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
