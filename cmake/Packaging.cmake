# `cpack -G DEB` in the build directory: a Debian package of the runtime
# component (tool, man page, completions, docs, deployment samples). Its
# dependencies come from dpkg-shlibdeps, so they name the libraries the
# binary actually links (libcurl4, libjansson4, libarchive13, ...).
set(CPACK_PACKAGE_NAME ddbaudit)
set(CPACK_PACKAGE_VENDOR "ddbaudit")
set(CPACK_PACKAGE_CONTACT "ddbaudit maintainers <ddbaudit@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "audit and replay the change logs of DynamoDB tables")
set(CPACK_PACKAGE_DESCRIPTION
  "ddbaudit reads the JSON audit objects a DynamoDB-stream processor writes to S3,\
 validates every record, rebuilds each item's history and reports gaps,\
 duplicates and malformed records, or re-emits the changes as DynamoDB Stream\
 events.")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR DEB)
set(CPACK_COMPONENTS_ALL runtime)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_DEBIAN_PACKAGE_NAME ddbaudit)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "bash-completion")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
include(CPack)
