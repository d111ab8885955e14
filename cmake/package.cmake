# Install layout and the Debian package (docs/operations.md, "Install from the .deb").
#
# Included by CMakeLists.txt. `cmake --install` (or `make install`) lays out:
#   <prefix>/bin/chorusd, chorusctl
#   <prefix>/share/chorus/flows/       example flows (flows_dir of the installed config)
#   <prefix>/share/doc/chorus/         README and docs/
#   /etc/chorus/chorusd.json           production configuration (conffile)
#   /etc/chorus/guardrails.json        guardrail rules (conffile)
#   /lib/systemd/system/chorusd.service
#   /usr/lib/sysusers.d/chorus.conf    the `chorus` system user
#   /usr/lib/tmpfiles.d/chorus.conf    /var/lib/chorus and /etc/chorus/secrets
# The /etc, /var and systemd paths are absolute (cache variables below), so
# stage with DESTDIR when not installing for real. chorusd.json and the unit
# are generated at install time from the install prefix, so the paths in
# them are those of the tree actually installed (the .deb uses /usr).
#
# `make package` (cpack -G DEB) builds chorus_<version>_<arch>.deb with the
# maintainer scripts of packaging/debian and Depends computed by
# dpkg-shlibdeps when it is available (declared otherwise).

set(CHORUS_CONF_DIR /etc/chorus CACHE PATH "Installed configuration directory")
set(CHORUS_STATE_DIR /var/lib/chorus CACHE PATH "Installed data_dir")
set(CHORUS_UNIT_DIR /lib/systemd/system CACHE PATH "systemd system unit directory")
set(CHORUS_SYSUSERS_DIR /usr/lib/sysusers.d CACHE PATH "sysusers.d directory")
set(CHORUS_TMPFILES_DIR /usr/lib/tmpfiles.d CACHE PATH "tmpfiles.d directory")

set(CHORUS_PKG_DIR ${CMAKE_SOURCE_DIR}/packaging)
set(CHORUS_DATA_SUBDIR ${CMAKE_INSTALL_DATADIR}/chorus)
set(CHORUS_DOC_SUBDIR ${CMAKE_INSTALL_DATADIR}/doc/chorus)

install(DIRECTORY ${CMAKE_SOURCE_DIR}/flows/ DESTINATION ${CHORUS_DATA_SUBDIR}/flows
    FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
    PATTERN "tests" EXCLUDE)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/docs/ DESTINATION ${CHORUS_DOC_SUBDIR}
    FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION ${CHORUS_DOC_SUBDIR})
install(FILES ${CMAKE_SOURCE_DIR}/config/guardrails.json DESTINATION ${CHORUS_CONF_DIR}
    PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES ${CHORUS_PKG_DIR}/sysusers.conf DESTINATION ${CHORUS_SYSUSERS_DIR}
    RENAME chorus.conf)
install(FILES ${CHORUS_PKG_DIR}/tmpfiles.conf DESTINATION ${CHORUS_TMPFILES_DIR}
    RENAME chorus.conf)

# Generated at install time: CMAKE_INSTALL_PREFIX is then the prefix being
# installed (the .deb's /usr under cpack), not the one configured.
install(CODE "
    set(CHORUS_BIN_DIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
    set(CHORUS_FLOWS_DIR \"\${CMAKE_INSTALL_PREFIX}/${CHORUS_DATA_SUBDIR}/flows\")
    set(CHORUS_DOC_DIR \"\${CMAKE_INSTALL_PREFIX}/${CHORUS_DOC_SUBDIR}\")
    set(CHORUS_CONF_DIR \"${CHORUS_CONF_DIR}\")
    set(CHORUS_STATE_DIR \"${CHORUS_STATE_DIR}\")
    set(CHORUS_SERVICE_IN \"${CMAKE_SOURCE_DIR}/config/chorusd.service\")
    set(CHORUS_JSON_IN \"${CHORUS_PKG_DIR}/chorusd.json.in\")
    set(CHORUS_GEN_DIR \"${CMAKE_BINARY_DIR}/install-generated\")
    set(CHORUS_SOURCE_DIR \"${CMAKE_SOURCE_DIR}\")
    include(\"${CMAKE_SOURCE_DIR}/cmake/install-generated.cmake\")
    file(INSTALL \"\${CHORUS_GEN_DIR}/chorusd.json\" DESTINATION \"${CHORUS_CONF_DIR}\"
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
    file(INSTALL \"\${CHORUS_GEN_DIR}/chorusd.service\" DESTINATION \"${CHORUS_UNIT_DIR}\"
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
")

# The Debian package.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME chorus)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "chorus maintainers <chorus@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "multi-channel conversational AI runtime (chorusd, chorusctl)")
set(CPACK_PACKAGE_DESCRIPTION "chorusd serves flows over web chat, a chat API, SMS and voice \
(Twilio), with an admin API; chorusctl validates, tests and inspects them and backs up the database.")
# The package installs under /usr whatever prefix this tree was configured
# with; with DESTDIR staging the absolute /etc, /lib and /usr/lib paths work.
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS systemd)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CHORUS_PKG_DIR}/debian/conffiles
    ${CHORUS_PKG_DIR}/debian/postinst ${CHORUS_PKG_DIR}/debian/prerm
    ${CHORUS_PKG_DIR}/debian/postrm)
# tzdata: the queues' business hours read their zone from /usr/share/zoneinfo;
# procps: the unit's ExecReload is /bin/kill -HUP (a minimal Debian lacks it).
find_program(DPKG_SHLIBDEPS dpkg-shlibdeps)
if(DPKG_SHLIBDEPS)
    set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON) # appended to what is set here
    set(CPACK_DEBIAN_PACKAGE_DEPENDS "tzdata, procps")
else()
    # Debian 12's runtime libraries of the link line in CMakeLists.txt.
    set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6 (>= 2.36), libuv1 (>= 1.44), libjansson4 (>= 2.14), \
libcurl4 (>= 7.88), libsqlite3-0 (>= 3.40), libssl3 (>= 3.0), libwslay1, libsystemd0, \
libutf8proc2, libpcre2-8-0 (>= 10.42), libmimalloc2.0, tzdata, procps")
endif()
include(CPack)
