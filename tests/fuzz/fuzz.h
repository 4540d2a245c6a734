/* fuzz.h: the libFuzzer entry points every target defines (tests/fuzz/README.md). */
#ifndef BFF_FUZZ_H
#define BFF_FUZZ_H
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional per target; the replay driver calls it when the target defines it. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

#endif
