# The git commit the tool is built from (--version, metrics), read when the
# project is configured. Configure runs again when HEAD moves (a commit, a
# checkout, a merge), so the value follows the tree. Outside a git work tree
# of this project (a source tarball, even one unpacked inside another
# repository) it is "unknown", unless the packager gives -DDDA_COMMIT=...
set(DDA_COMMIT "" CACHE STRING "commit to report in --version (default: from git)")
set(dda_commit "${DDA_COMMIT}")
if(NOT dda_commit)
  set(dda_commit "unknown")
  find_package(Git QUIET)
  if(GIT_FOUND)
    execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --show-toplevel
      WORKING_DIRECTORY ${PROJECT_SOURCE_DIR} OUTPUT_VARIABLE top RESULT_VARIABLE rc
      OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(rc EQUAL 0)
      get_filename_component(top "${top}" REALPATH)
      get_filename_component(here "${PROJECT_SOURCE_DIR}" REALPATH)
    endif()
    if(rc EQUAL 0 AND top STREQUAL here)
      execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --short=12 HEAD
        WORKING_DIRECTORY ${PROJECT_SOURCE_DIR} OUTPUT_VARIABLE head RESULT_VARIABLE rc
        OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
      if(rc EQUAL 0 AND head MATCHES "^[0-9a-f]+$")
        set(dda_commit "${head}")
      endif()
      # The reflog of HEAD changes with every move of HEAD.
      execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --path-format=absolute
                              --git-path logs/HEAD
        WORKING_DIRECTORY ${PROJECT_SOURCE_DIR} OUTPUT_VARIABLE reflog RESULT_VARIABLE rc
        OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
      if(rc EQUAL 0 AND EXISTS "${reflog}")
        set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${reflog}")
      endif()
    endif()
  endif()
endif()
set(DDA_COMMIT_C "${PROJECT_BINARY_DIR}/generated/commit.c")
set(DDA_COMMIT "${dda_commit}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/commit.c.in "${DDA_COMMIT_C}" @ONLY)
