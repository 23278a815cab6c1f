# Shipping pgbaton like a tool DBAs install (included by the top-level CMakeLists.txt after tools/):
#  - `pgbaton --version` prints the version and the git commit, taken at every build
#    (cmake/build_info.cmake);
#  - man pages pgbaton(1) and pgbaton-VERB(1), generated from the binary's own --help by help2man
#    (cmake/man_pages.sh), so they are never written twice;
#  - `cmake --install` puts the binary in bin/, the man pages in share/man/man1/ and the docs in
#    share/doc/pgbaton/;
#  - CPack builds the Debian package pgbaton_<version>_amd64.deb (`--target package`), with its
#    runtime dependencies derived by dpkg-shlibdeps from the libraries the binary links.
include(GNUInstallDirs)

# --- version and commit -------------------------------------------------------------------------
set(PGBATON_GENERATED_DIR "${PROJECT_BINARY_DIR}/generated")
add_custom_target(pgbaton_build_info
  COMMAND "${CMAKE_COMMAND}" -DSOURCE_DIR=${PROJECT_SOURCE_DIR} -DVERSION=${PROJECT_VERSION}
          -DOUTPUT=${PGBATON_GENERATED_DIR}/build_info.h -P "${PROJECT_SOURCE_DIR}/cmake/build_info.cmake"
  BYPRODUCTS "${PGBATON_GENERATED_DIR}/build_info.h"
  COMMENT "Reading the version and git commit for pgbaton --version"
  VERBATIM)
add_dependencies(pgbaton pgbaton_build_info)
target_include_directories(pgbaton PRIVATE "${PGBATON_GENERATED_DIR}")

# --- man pages ----------------------------------------------------------------------------------
set(PGBATON_MAN_DIR "${PROJECT_BINARY_DIR}/man")
find_program(HELP2MAN_EXECUTABLE help2man)
if(HELP2MAN_EXECUTABLE)
  add_custom_command(
    OUTPUT "${PGBATON_MAN_DIR}/pgbaton.1.gz"
    COMMAND "${CMAKE_COMMAND}" -E env HELP2MAN=${HELP2MAN_EXECUTABLE}
            "${PROJECT_SOURCE_DIR}/cmake/man_pages.sh" $<TARGET_FILE:pgbaton> "${PGBATON_MAN_DIR}"
            "${PROJECT_VERSION}"
    DEPENDS pgbaton "${PROJECT_SOURCE_DIR}/cmake/man_pages.sh"
    COMMENT "Generating the pgbaton man pages from --help"
    VERBATIM)
  add_custom_target(pgbaton_man ALL DEPENDS "${PGBATON_MAN_DIR}/pgbaton.1.gz")
  install(DIRECTORY "${PGBATON_MAN_DIR}/" DESTINATION "${CMAKE_INSTALL_MANDIR}/man1"
    FILES_MATCHING PATTERN "*.1.gz")
else()
  # The binary builds without help2man; installing (and so packaging) refuses rather than ship
  # without its man pages.
  message(STATUS "pgbaton: help2man not found: no man pages; install and package will fail "
                 "(scripts/setup installs help2man)")
  install(CODE "message(FATAL_ERROR \"pgbaton: help2man was not found when configuring, so the \"
    \"man pages were not generated\\nhint: apt-get install help2man (scripts/setup does), then \"
    \"configure and build again\")")
endif()

# --- install layout -----------------------------------------------------------------------------
install(TARGETS pgbaton RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
install(FILES "${PROJECT_SOURCE_DIR}/README.md" DESTINATION "${CMAKE_INSTALL_DOCDIR}")
install(DIRECTORY "${PROJECT_SOURCE_DIR}/docs/" DESTINATION "${CMAKE_INSTALL_DOCDIR}")

# --- Debian package -----------------------------------------------------------------------------
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "pgbaton")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_CONTACT "pgbaton maintainers <pgbaton@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "move a live PostgreSQL database to a new major version with about a second of write pause")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION_SUMMARY}
A decoder streams changes off the old cluster (pgoutput over the replication protocol) into a
durable work queue (embedded RocksDB, or Apache Kafka); an applier replays them onto the new
cluster, which a snapshot-consistent initial copy filled first; cutover fences writers, drains,
syncs sequences and flips writers to the new cluster.")
set(CPACK_DEBIAN_PACKAGE_SECTION "database")
# pgbaton_<version>_amd64.deb
set(CPACK_DEBIAN_FILE_NAME "DEB-DEFAULT")
# Depends: from the shared libraries the binary needs (dpkg-shlibdeps; dpkg-dev is part of
# build-essential). `copy` also runs pg_dump and psql (--pg-dump, --psql), which no library
# dependency finds: the client programs are declared by hand.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "postgresql-client")
# The release preset builds with debug information; the package ships the binary stripped.
set(CPACK_STRIP_FILES ON)
# `--target package_source`: a tarball of the tree without git metadata, build trees or the test
# servers; a binary built from it reports "commit unknown".
set(CPACK_SOURCE_GENERATOR "TGZ")
set(CPACK_SOURCE_IGNORE_FILES
  "^${PROJECT_SOURCE_DIR}/(\\\\.git|build|\\\\.deps|\\\\.demo|\\\\.cache)(/|$)")
include(CPack)
