# Install-time generation of the installed configuration and systemd unit
# (included by the install code of cmake/package.cmake, which sets the
# CHORUS_* variables from the prefix being installed).
#
# config/chorusd.service is written for the standard layout (/usr/bin,
# /etc/chorus, /var/lib/chorus, /usr/share/doc/chorus) so it stays usable as
# it is; here its paths are replaced by those of this install.
file(READ "${CHORUS_SERVICE_IN}" unit)
string(REPLACE "/usr/bin/" "${CHORUS_BIN_DIR}/" unit "${unit}")
string(REPLACE "/etc/chorus" "${CHORUS_CONF_DIR}" unit "${unit}")
string(REPLACE "/var/lib/chorus" "${CHORUS_STATE_DIR}" unit "${unit}")
string(REPLACE "/usr/share/doc/chorus" "${CHORUS_DOC_DIR}" unit "${unit}")
file(WRITE "${CHORUS_GEN_DIR}/chorusd.service" "${unit}")
# Installed servers change production flows only by promotion
# (flows.production; docs/configuration.md).
set(CHORUS_FLOWS_SECTION "\n    \"flows\": {\n        \"production\": \"promoted\"\n    },")
configure_file("${CHORUS_JSON_IN}" "${CHORUS_GEN_DIR}/chorusd.json" @ONLY)
