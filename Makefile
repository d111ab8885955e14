# Thin wrapper over CMake: the two quick-start commands and a few helpers.
#   make run      install dependencies if missing, build, start chorusd in the
#                 foreground on config/chorusd.json (Ctrl-C stops it)
#   make test     install dependencies, build normally and with ASan+UBSan,
#                 run every test through ctest in both builds
#   make package  build build/chorus_<version>_<arch>.deb (docs/operations.md)
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CONFIG ?= config/chorusd.json

.PHONY: all deps build run test test-normal test-asan node-deps bench clean package

all: build

deps:
	@./scripts/install-deps.sh

build/CMakeCache.txt: | deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps build/CMakeCache.txt
	cmake --build build -j $(JOBS)

run: build
	mkdir -p var
	./build/chorusd --config $(CONFIG)

node-deps: deps
	@./scripts/install-node-deps.sh

test: test-normal test-asan

test-normal: deps node-deps build
	ctest --test-dir build --output-on-failure -j $(JOBS)

# Sanitizer build with clang, so the fuzz targets run under libFuzzer too.
test-asan: deps node-deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
		-DCHORUS_SANITIZE=ON -DCHORUS_FUZZ=ON
	cmake --build build-asan -j $(JOBS)
	ctest --test-dir build-asan --output-on-failure -j $(JOBS)

# The Debian package, with CPack (cmake/package.cmake).
package: build
	cd build && cpack -G DEB

clean:
	rm -rf build build-asan
