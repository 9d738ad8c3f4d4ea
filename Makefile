# dsv4 toolchain build. `make` builds libquant, the kernels and every tool; `make test` runs the
# test suite; `make bench` the CPU benchmarks; `make fuzz` the fuzz harnesses (clang/libFuzzer).
#
#   make CUDA=0     build without nvcc (CUDA objects are skipped; tools use the CPU path)
#   make SAN=1      AddressSanitizer + UndefinedBehaviorSanitizer build (into build-san/, CUDA off)
#
# Sources are found by directory, so a new module is a new file, not a Makefile edit:
#   libquant/*/*.c  kernels/cpu/*.c  kernels/cuda/*.cu  tools/*.c (one binary each)
#   tests/unit/*.c (linked into one runner)  bench/*.c (one binary each)  tests/fuzz/fuzz_*.c
#   tests/breakgen/*.c (one binary, build/tests/dsv4-break)

SAN  ?= 0
ifeq ($(SAN),1)
BUILD ?= build-san
CUDA  := 0
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
BUILD ?= build
SANFLAGS :=
endif

NVCC ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
ifeq ($(origin CUDA),undefined)
CUDA := $(if $(NVCC),1,0)
endif

CC      ?= gcc
OPT     ?= -O2
PKGS    := jansson libxxhash yaml-0.1 lapacke openblas
# Evaluated when used (`=`), not when the Makefile is read: on a fresh machine the `deps` step
# installs the packages first, and every compile and link is ordered after it.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS   = -std=c11 $(OPT) -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter \
           -D_GNU_SOURCE -pthread -Ilibquant -Ikernels $(PKG_CFLAGS) $(SANFLAGS) $(EXTRA_CFLAGS)
LDLIBS   = $(PKG_LIBS) -lm -pthread
LDFLAGS := -Wl,--as-needed $(SANFLAGS)

LIB_SRC  := $(sort $(wildcard libquant/*/*.c) $(wildcard kernels/cpu/*.c))
CU_SRC   := $(sort $(wildcard kernels/cuda/*.cu))
TOOL_SRC := $(sort $(wildcard tools/*.c))
TEST_SRC := $(sort $(wildcard tests/unit/*.c))
BENCH_SRC:= $(sort $(wildcard bench/*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
BREAK_SRC:= $(sort $(wildcard tests/breakgen/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
ifeq ($(CUDA),1)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CU_OBJ   := $(CU_SRC:%.cu=$(BUILD)/obj/%.o)
CFLAGS   += -DDSV4_CUDA=1 -I$(CUDA_HOME)/include
# Static CUDA runtime: the binaries start on machines with no GPU and no driver and fall back to the CPU.
LDLIBS   += -L$(CUDA_HOME)/lib64 -lcudart_static -ldl -lrt -lstdc++
NVFLAGS  := -O3 -std=c++17 -Ilibquant -Ikernels -Xcompiler -Wall,-Wextra,-Werror,-Wno-unused-parameter \
            -Werror all-warnings \
            -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=compute_90 -DDSV4_CUDA=1
else
CU_OBJ   :=
endif

TOOLS    := $(TOOL_SRC:tools/%.c=$(BUILD)/bin/%)
TESTBIN  := $(BUILD)/tests/unit
BREAKBIN := $(BUILD)/tests/dsv4-break
BENCHES  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
LIBQ     := $(BUILD)/libquant.a

.PHONY: all deps test bench fuzz clean
all: deps $(LIBQ) $(TOOLS) $(TESTBIN) $(BREAKBIN) $(BENCHES)

# Installs the Debian packages when pkg-config cannot find them.
deps:
	@pkg-config --exists $(PKGS) || bash scripts/install-deps.sh

$(BUILD)/obj/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: %.cu | deps
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -MMD -MP -c $< -o $@

$(LIBQ): $(LIB_OBJ) $(CU_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/%: $(BUILD)/obj/tools/%.o $(LIBQ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $< $(LIBQ) $(LDLIBS) -o $@

$(TESTBIN): $(TEST_SRC:%.c=$(BUILD)/obj/%.o) $(LIBQ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(filter %.o,$^) $(LIBQ) $(LDLIBS) -o $@

# The broken-artifact generator of the verify/fixup end-to-end test (tests/breakgen/README.md).
$(BREAKBIN): $(BREAK_SRC:%.c=$(BUILD)/obj/%.o) $(LIBQ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(filter %.o,$^) $(LIBQ) $(LDLIBS) -o $@

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIBQ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $< $(LIBQ) $(LDLIBS) -o $@

# The README's test command. BUILD and SAN pass through, so `make SAN=1 test` tests the sanitized build.
test: all
	BUILD=$(BUILD) bash tests/run.sh

bench: all
	BUILD=$(BUILD) bash bench/run.sh

# libFuzzer harnesses (clang). Each runs FUZZ_SECONDS and fails on any crash, leak or sanitizer report.
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS = -std=c11 -O1 -g -D_GNU_SOURCE -pthread -Ilibquant -Ikernels $(PKG_CFLAGS) \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_LIB_SRC := $(filter-out kernels/%,$(LIB_SRC))
fuzz: deps
	@mkdir -p build-fuzz
	@set -e; for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  clang $(FUZZ_CFLAGS) $$f $(FUZZ_LIB_SRC) $(wildcard kernels/cpu/*.c) $(PKG_LIBS) -lm -o build-fuzz/$$n; \
	  mkdir -p build-fuzz/corpus-$$n; cp tests/fuzz/corpus/$$n/* build-fuzz/corpus-$$n/ 2>/dev/null || true; \
	  echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
	  build-fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 build-fuzz/corpus-$$n \
	    > build-fuzz/$$n.log 2>&1 || { tail -40 build-fuzz/$$n.log; echo "fuzz: $$n FAILED"; exit 1; }; \
	  grep -E 'stat::number_of_executed_units' build-fuzz/$$n.log || true; done

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
