#ifndef FM_SHA256_H
#define FM_SHA256_H
#include <stddef.h>
#include <stdint.h>

/* 1 when the CPU has the SHA extensions (SHA-NI). */
int fm_sha256_hardware_available(void);

/* Runs the SHA-256 compression function (FIPS 180-4) over `blocks` 64-byte blocks at `data`,
   updating `state` (the eight working words, in order): with SHA-NI where the CPU has it and
   `portable` is 0, else in portable C. */
void fm_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks, int portable);

#endif
