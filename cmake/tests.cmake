# Test registration. Every test is found by its path:
#   tests/unit/<module>/test_<object>.c   cmocka, label "unit"
#   tests/integration/test_*.py           python3 against the real daemon, label "integration"
#   tests/integration/test_*.mjs          node against the real daemon, label "integration"
#   tests/fuzz/<target>/fuzz_<target>.c   libFuzzer target + corpus/, label "fuzz"
#   flows/                                the example flows' conversation tests, label "flows"
# Integration tests read the binaries' paths from the environment
# (CHORUSD, CHORUSCTL, CHORUS_SOURCE_DIR) and bind port 0, so ctest -j is safe.

pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)

set(CHORUS_TEST_ENV
    "CHORUSD=$<TARGET_FILE:chorusd>"
    "CHORUSCTL=$<TARGET_FILE:chorusctl>"
    "CHORUS_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
    "CHORUS_BUILD_DIR=${CMAKE_BINARY_DIR}"
    "CHORUS_DATA_DIR=${CMAKE_SOURCE_DIR}/../shared/data"
    "NODE_PATH=${CMAKE_SOURCE_DIR}/tests/node/node_modules"
    "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1"
    "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")

file(GLOB_RECURSE UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/*/test_*.c)
foreach(src ${UNIT_TESTS})
    get_filename_component(name ${src} NAME_WE)
    get_filename_component(dir ${src} DIRECTORY)
    get_filename_component(module ${dir} NAME)
    set(target unit_${module}_${name})
    add_executable(${target} ${src})
    target_include_directories(${target} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/tests)
    target_compile_options(${target} PRIVATE ${CHORUS_WARNINGS} -Wno-missing-prototypes)
    target_link_libraries(${target} PRIVATE chorus PkgConfig::CMOCKA)
    add_test(NAME unit/${module}/${name} COMMAND ${target} WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
    set_tests_properties(unit/${module}/${name} PROPERTIES LABELS unit TIMEOUT 300
        ENVIRONMENT "${CHORUS_TEST_ENV}")
endforeach()

file(GLOB INTEGRATION_PY CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/integration/test_*.py)
foreach(src ${INTEGRATION_PY})
    get_filename_component(name ${src} NAME_WE)
    add_test(NAME integration/${name} COMMAND python3 -u ${src}
        WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
    # 77: the test cannot run here and says why (tests/integration/tmpfs_fixture.py)
    set_tests_properties(integration/${name} PROPERTIES LABELS integration TIMEOUT 300
        SKIP_RETURN_CODE 77 ENVIRONMENT "${CHORUS_TEST_ENV}")
endforeach()

file(GLOB INTEGRATION_JS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/integration/test_*.mjs)
foreach(src ${INTEGRATION_JS})
    get_filename_component(name ${src} NAME_WE)
    add_test(NAME integration/${name} COMMAND node ${src} WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
    set_tests_properties(integration/${name} PROPERTIES LABELS integration TIMEOUT 300
        ENVIRONMENT "${CHORUS_TEST_ENV}")
endforeach()

# Fuzz targets. With CHORUS_FUZZ (clang) each is a libFuzzer binary run for a
# fixed number of inputs from its seed corpus with a fixed seed; otherwise it
# is linked with a replay driver that runs every corpus file once.
file(GLOB FUZZ_TARGETS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/*/fuzz_*.c)
foreach(src ${FUZZ_TARGETS})
    get_filename_component(name ${src} NAME_WE)
    get_filename_component(dir ${src} DIRECTORY)
    if(CHORUS_FUZZ)
        add_executable(${name} ${src})
        target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
        target_link_options(${name} PRIVATE -fsanitize=fuzzer)
        add_test(NAME fuzz/${name} COMMAND ${CMAKE_SOURCE_DIR}/scripts/run-fuzz.sh
            $<TARGET_FILE:${name}> ${dir} 20000)
    else()
        add_executable(${name} ${src} ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c)
        add_test(NAME fuzz-replay/${name} COMMAND ${name} ${dir}/corpus)
    endif()
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src)
    target_link_libraries(${name} PRIVATE chorus)
    if(CHORUS_FUZZ)
        set_tests_properties(fuzz/${name} PROPERTIES LABELS fuzz TIMEOUT 300)
    else()
        set_tests_properties(fuzz-replay/${name} PROPERTIES LABELS fuzz TIMEOUT 300)
    endif()
endforeach()

# The example flows' conversation tests (chorusctl test), once there are any.
file(GLOB FLOW_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/flows/tests/*.json)
if(FLOW_TESTS)
    add_test(NAME flows/example-tests COMMAND chorusctl test --flows ${CMAKE_SOURCE_DIR}/flows
        ${CMAKE_SOURCE_DIR}/flows/tests)
    set_tests_properties(flows/example-tests PROPERTIES LABELS flows TIMEOUT 300
        ENVIRONMENT "${CHORUS_TEST_ENV}")
endif()

# Source checks: formatting and banned functions (normal build only).
if(NOT CHORUS_SANITIZE)
    add_test(NAME lint/format COMMAND ${CMAKE_SOURCE_DIR}/scripts/check-format.sh
        WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    add_test(NAME lint/checksrc COMMAND ${CMAKE_SOURCE_DIR}/scripts/checksrc.sh
        WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(lint/format lint/checksrc PROPERTIES LABELS lint)
endif()

# The configuration reference must match the option table.
if(NOT CHORUS_SANITIZE)
    add_test(NAME lint/config-doc COMMAND ${CMAKE_SOURCE_DIR}/scripts/gen-config-doc.sh
        $<TARGET_FILE:chorusd> --check)
    set_tests_properties(lint/config-doc PROPERTIES LABELS lint)
endif()
